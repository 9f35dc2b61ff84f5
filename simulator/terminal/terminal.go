package terminal

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
	"github.com/rs/zerolog"
)

// Outcomes by amount, in minor units: the last two digits pick the
// scenario (DESIGN §7). Anything else approves.
const (
	AmountDecline       = 51 // declined by the host
	AmountNoResult      = 52 // no result until the ECR aborts, then 06 1E 6C, not charged
	AmountCustomerAbort = 53 // the customer cancels on the terminal
	AmountApproveAfter  = 54 // approves only after the ECR's abort
	AmountSlow          = 55 // Options.Slow of intermediate status, then approves
)

// Options configures a Simulator; zero values take the defaults.
type Options struct {
	Password   string        // default "000000"
	TerminalID string        // 8 digits, default "52500042"
	Software   string        // Status Enquiry version text
	Step       time.Duration // gap between intermediate statuses; default 300 ms
	Slow       time.Duration // length of the AmountSlow scenario; default 5 s
	// T3 bounds the wait for the ECR's answer to each message; default 5 s.
	T3 time.Duration
	// Receipts, if set, gets every receipt rendered for a technician.
	Receipts io.Writer
	Log      zerolog.Logger
	// T1 and T2 for the serial transport; defaults as in zvt.
	T1, T2 time.Duration
	// Journal bounds the journal: past it the oldest settled or declined
	// transactions are dropped. Approved transactions not yet settled
	// stay until an end-of-day, whatever the bound. Default 10000.
	Journal int
	// Now replaces time.Now.
	Now func() time.Time
	// Currency is the terminal's ISO 4217 numeric currency; default 978
	// (EUR). Registration with another one is refused (84 1E 6F).
	Currency int64
	// Repoll is how long the terminal waits before sending a
	// Status-Information again after the ECR answered 84 9C; the spec
	// says 2 s (PA00P015 §2.2.6).
	Repoll time.Duration
	// DiagnosisRequired starts the terminal in need of a Diagnosis 06 70:
	// registration reports it (status-byte bit 1) and Status Enquiry
	// answers C2 until one ran.
	DiagnosisRequired bool
	// SequenceIDs makes the terminal agree to message sequence ids (TLV
	// 1F73, PA00P015 chapter 5) when the ECR asks at Registration.
	SequenceIDs bool
	// Profile makes the terminal behave like firmware that deviates from
	// the spec (quirks.go); "" is the spec's behaviour.
	Profile string
}

func (o Options) currency() int64 {
	if o.Currency == 0 {
		return 978
	}
	return o.Currency
}

// Kind of a journal entry.
type Kind string

// Journal entry kinds.
const (
	Sale     Kind = "sale"
	Refund   Kind = "refund"
	Reversal Kind = "reversal"
	PreAuth  Kind = "preauth" // a reservation (06 22); Amount is what is still reserved
	Booking  Kind = "booking" // a reservation booked (06 24) or partly released (06 23)
	Release  Kind = "release" // a reservation released whole (06 25)
)

// Entry is one transaction in the journal. Only transactions the ECR
// acknowledged (and so the terminal committed) are in it.
type Entry struct {
	ReceiptNo   int
	Trace       int
	Kind        Kind
	Amount      int64 // minor units
	Currency    int64 // ISO 4217 numeric
	Approved    bool
	Result      byte // 0 when approved
	Reversed    bool // voided by a later reversal
	OrigReceipt int  // for a reversal, the receipt it voided
	OrigTrace   int  // and that transaction's trace number
	Settled     bool // included in an end-of-day
	Closed      bool // a reservation that was booked or released
	At          time.Time
}

// Simulator is a ZVT terminal. Its state is shared by every session (a
// pty and a TCP listener may serve the same simulator); sessions take
// turns through mu.
type Simulator struct {
	opts Options
	log  zerolog.Logger

	mu          sync.Mutex // serializes commands; guards the fields below
	reg         registration
	receiptNo   int
	trace       int
	lastInfo    *zvt.APDU // last Status-Information, for Repeat Receipt
	lastReceipt []string
	lastAdmin   bool // the last receipt was an administration receipt
	seq         int  // the last message sequence id either side used
	needDiag    bool // Options.DiagnosisRequired until a Diagnosis ran
	eods        int

	jmu        sync.Mutex // guards journal and registered, readable mid-command
	journal    []Entry
	registered bool

	fmu         sync.Mutex // guards the fault switches, taken without mu
	nakNext     int
	garbageNext int
	dropNext    bool
	ignoreAbort bool
}

// registration is what the ECR asked for at Registration (PA00P015 §2.1).
type registration struct {
	config    byte
	tlv       bool            // the ECR sent a TLV container: the PT may send them
	permitted map[uint16]bool // tag 26 list; nil when the ECR sent none
	seq       bool            // message sequence ids agreed (chapter 5)
}

// New returns a Simulator. It panics on an unknown Options.Profile, which
// callers check with CheckProfile first.
func New(opts Options) *Simulator {
	if err := CheckProfile(opts.Profile); err != nil {
		panic(err.Error())
	}
	if opts.Repoll == 0 {
		opts.Repoll = 2 * time.Second
	}
	if opts.Password == "" {
		opts.Password = "000000"
	}
	if opts.TerminalID == "" {
		opts.TerminalID = "52500042"
	}
	if opts.Software == "" {
		opts.Software = "posgate-sim ZVT 1.0"
	}
	if opts.Step == 0 {
		opts.Step = 300 * time.Millisecond
	}
	if opts.Slow == 0 {
		opts.Slow = 5 * time.Second
	}
	if opts.T3 == 0 {
		opts.T3 = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Journal <= 0 {
		opts.Journal = 10000
	}
	return &Simulator{opts: opts, needDiag: opts.DiagnosisRequired,
		log: opts.Log.With().Str("component", "sim-terminal").Logger()}
}

// Journal returns a copy of the journal, oldest first.
// It may be called at any time, also while a transaction runs (from a
// TxEventHandler, say).
func (s *Simulator) Journal() []Entry {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	return append([]Entry(nil), s.journal...)
}

// Registered reports whether an ECR has registered (and not logged off).
func (s *Simulator) Registered() bool {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	return s.registered
}

// NAKNextFrame makes the terminal answer the next good frame it receives
// with NAK (serial only); the ECR must repeat it.
func (s *Simulator) NAKNextFrame() {
	s.fmu.Lock()
	s.nakNext++
	s.fmu.Unlock()
}

// GarbageNextFrame makes the terminal send its next frame with garbage
// bytes inside (serial only); the ECR must NAK it and get it again.
func (s *Simulator) GarbageNextFrame() {
	s.fmu.Lock()
	s.garbageNext++
	s.fmu.Unlock()
}

// DropLineNextTransaction makes the terminal hang up in the middle of the
// next payment, after its first intermediate status: the pty master is
// closed (a pulled cable) or the TCP connection is cut. Nothing is charged.
func (s *Simulator) DropLineNextTransaction() {
	s.fmu.Lock()
	s.dropNext = true
	s.fmu.Unlock()
}

// IgnoreAbort makes the terminal acknowledge the ECR's Abort and carry on
// as if it never came (some acquirers do; research §1.11).
func (s *Simulator) IgnoreAbort(on bool) {
	s.fmu.Lock()
	s.ignoreAbort = on
	s.fmu.Unlock()
}

func (s *Simulator) takeFault(n *int) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (s *Simulator) takeDrop() bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	d := s.dropNext
	s.dropNext = false
	return d
}

func (s *Simulator) ignoresAbort() bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.ignoreAbort || s.quirk(QuirkAbortIgnored)
}

// ServeSerial is a simulator.Handler for a pty: ZVT serial framing.
func (s *Simulator) ServeSerial(ctx context.Context, c simulator.Conn) error {
	tr := zvt.NewSerial(connLine{c}, zvt.SerialOptions{
		T1: s.opts.T1, T2: s.opts.T2, Trace: s.traceFrame,
		NAKFault:    func() bool { return s.takeFault(&s.nakNext) },
		GarbleFault: func() bool { return s.takeFault(&s.garbageNext) },
	})
	return s.serve(ctx, tr)
}

// ServeTCP is a simulator.Handler for TCP: bare APDUs.
func (s *Simulator) ServeTCP(ctx context.Context, c simulator.Conn) error {
	return s.serve(ctx, zvt.NewTCP(connLine{c}, s.traceFrame))
}

func (s *Simulator) traceFrame(dir device.Direction, a zvt.APDU) {
	s.log.Trace().Str("dir", string(dir)).Str("apdu", zvt.Describe(a)).Msg("sim frame")
}

// connLine gives a simulator.Conn the serial read-timeout semantics
// zvt.Line expects: a timed-out Read returns (0, nil).
type connLine struct{ c simulator.Conn }

func (l connLine) Write(b []byte) (int, error) { return l.c.Write(b) }

func (l connLine) Read(b []byte) (int, error) {
	n, err := l.c.Read(b)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	return n, err
}

func (l connLine) SetReadTimeout(d time.Duration) error {
	if d < 0 {
		return l.c.SetReadDeadline(time.Time{})
	}
	return l.c.SetReadDeadline(time.Now().Add(d))
}

// logOff does what Log-Off 06 02 asks (§2.24): config byte back to 86, no
// more TLV containers.
func (s *Simulator) logOff() {
	s.reg = registration{config: 0x86}
	s.setRegistered(false)
}

// isRegistered and setRegistered guard the flag with jmu.
func (s *Simulator) isRegistered() bool { return s.Registered() }

func (s *Simulator) setRegistered(on bool) {
	s.jmu.Lock()
	s.registered = on
	s.jmu.Unlock()
}

// journalAdd appends e. Past Options.Journal entries it drops the
// oldest that no end-of-day or reversal can use any more (settled or
// declined) down to three quarters of the bound; approved transactions not
// yet settled always stay.
func (s *Simulator) journalAdd(e Entry) {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	s.journal = append(s.journal, e)
	if len(s.journal) <= s.opts.Journal {
		return
	}
	drop := len(s.journal) - s.opts.Journal*3/4
	k, newest := 0, len(s.journal)-1
	for i, e := range s.journal {
		if drop > 0 && i != newest && (e.Settled || !e.Approved) {
			drop--
			continue
		}
		s.journal[k] = e
		k++
	}
	clear(s.journal[k:])
	s.journal = s.journal[:k]
}

// journalUpdate runs fn on the journal under its lock.
func (s *Simulator) journalUpdate(fn func(j []Entry)) {
	s.jmu.Lock()
	fn(s.journal)
	s.jmu.Unlock()
}
