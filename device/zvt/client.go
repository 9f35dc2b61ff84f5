package zvt

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
	"github.com/rs/zerolog"
)

// Errors of the ECR client.
var (
	// ErrT3 means the terminal did not answer a command within T3.
	ErrT3 = fmt.Errorf("zvt: no answer within T3: %w", device.ErrTimeout)
	// ErrT4 means the terminal kept master rights past T4 without a result.
	ErrT4 = fmt.Errorf("zvt: no result within T4: %w", device.ErrTimeout)
	// ErrRejected wraps a command the terminal refused with 84 xx.
	ErrRejected = errors.New("zvt: command rejected")
	// ErrNoAnswer is returned by Abort when the transaction ended (or
	// failed) before the terminal answered the abort.
	ErrNoAnswer = errors.New("zvt: no answer")
	// ErrPersist wraps the handler's error for a Status-Information the
	// client therefore refused.
	ErrPersist = errors.New("zvt: status information not persisted")
	// ErrNotSupported is a command the terminal refused as "function not
	// possible" (result code 83), as firmware without it does. A
	// RejectedError with that code wraps it.
	ErrNotSupported = errors.New("zvt: function not supported by the terminal")
)

// RejectedError is a command the terminal refused with 84 Code 00.
type RejectedError struct {
	Command string
	Code    byte
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("zvt: %s rejected: %02X %s", e.Command, e.Code, ResultText(e.Code))
}

// Unwrap returns ErrRejected, and ErrNotSupported for code 83.
func (e *RejectedError) Unwrap() []error {
	if e.Code == 0x83 {
		return []error{ErrRejected, ErrNotSupported}
	}
	return []error{ErrRejected}
}

// rejected turns a negative answer into a RejectedError. The result code is
// the APRC, or, for 84 1E (the error form some terminals use for every
// refusal, §2.1), the first data byte.
func rejected(command string, a APDU) *RejectedError {
	code := a.Instr
	if a.Instr == 0x1E && len(a.Data) > 0 {
		code = a.Data[0]
	}
	return &RejectedError{Command: command, Code: code}
}

// Options configures a Client. ID and Spec are required.
type Options struct {
	ID       string // device id, e.g. "t1"
	Spec     string // /dev/ttyUSB0, tcp://host[:20007], tls://host:port or usb:VID:PID[:serial]
	Password string // 6 digits; default "000000"
	Currency string // ISO 4217 alpha; default "EUR"
	// Config is the Registration config byte; default 0xBE: the PT sends
	// receipts as print lines, intermediate status on, ECR controls
	// payment and admin functions.
	Config byte
	// Port overrides the serial line settings; zero values mean 9600 8N2
	// and TCP port 20007.
	Port   device.PortOptions
	T1, T2 time.Duration // serial timings; defaults 200 ms, 5 s
	T3     time.Duration // command → first answer; default 5 s
	T4     time.Duration // answer → result, restarted by 04 FF/04 0F; default 180 s
	// Log gets lifecycle at Info, messages at Debug and every frame,
	// decoded and masked, at Trace.
	Log      zerolog.Logger
	Notifier *device.Notifier // device.connected/disconnected
	Trace    *device.Trace    // last frames; default a ring of 200
	// BackoffMin/BackoffMax bound reconnects (see device.LinkOptions).
	BackoffMin, BackoffMax time.Duration
	// ConnectPerJob opens a TCP connection per command.
	ConnectPerJob bool
	// StatusEvery is how often Run sends Status Enquiry 05 01 while the
	// terminal is idle (PA00P015 §2.56: every minute or more often);
	// default 1 minute, negative turns it off.
	StatusEvery time.Duration
	// TLS configures tls://host:port terminals; nil verifies the
	// terminal's certificate against the system roots, for the host named
	// in the spec.
	TLS *tls.Config
	// DiagnosisEvery, if positive, makes Run send Diagnosis 06 70 that
	// often while idle, as a health check of the terminal's host link. A
	// Diagnosis also runs when the terminal asks for one (registration
	// status-byte bit 1, terminal status C2).
	DiagnosisEvery time.Duration
	// SequenceIDs asks the terminal at Registration to number every
	// message (TLV 1F73, PA00P015 chapter 5); used only if it agrees.
	SequenceIDs bool
	// RetryLater bounds how often a Status-Information whose handler
	// returned device.ErrRetryLater is answered 84 9C (the terminal sends
	// it again after 2 s, §2.2.6) before it is refused; default 5.
	RetryLater int
}

// Client is the ECR side of ZVT. It implements device.Terminal. Run must
// be running for the methods to work.
type Client struct {
	opts  Options
	pwd   []byte
	cc    int64
	tcp   bool
	link  *device.Link
	trace *device.Trace
	log   zerolog.Logger

	mu     sync.Mutex // guards active
	active *activeTx

	// Owned by the goroutine that runs the port's jobs (inside link.Do).
	lastReceipt int  // last receipt number the terminal reported (1F1F or 87), 0 if none
	registered  bool // Register succeeded and no LogOff since: LogOff on shutdown
	seqOn       bool // message sequence ids agreed at Registration (seqid.go)
	seq         int  // the last sequence id either side used
	seqAgreed   bool // the Registration's Completion echoed 1F73

	smu        sync.Mutex // guards the fields below
	status     device.TerminalStatus
	statusAt   time.Time
	statusErr  error
	lastJobEnd time.Time
	needDiag   bool      // the terminal asked for a Diagnosis
	diagAt     time.Time // last Diagnosis
	diagErr    error
	diagDone   bool // a Diagnosis ran (diagAt/diagErr are set)
}

var _ device.Terminal = (*Client)(nil)

// activeTx lets Abort reach into the transaction the owner goroutine runs.
type activeTx struct {
	abort chan chan error // Abort hands a reply channel
	done  chan struct{}
	// endOnStatus, if set, ends the master phase at the first
	// Status-Information, once acknowledged, with its data block: Read
	// Card (§2.21) has no Completion.
	endOnStatus func(data []byte)
}

// Validate reports a configuration New would refuse: a missing ID or
// Spec, a password that is not 6 digits, an unsupported currency.
func (o Options) Validate() error {
	if o.ID == "" || o.Spec == "" {
		return fmt.Errorf("zvt: %w: id and port are required", ErrBadValue)
	}
	if o.Password != "" {
		if _, err := Password(o.Password); err != nil {
			return err
		}
	}
	if o.Currency != "" {
		if _, err := CurrencyCode(o.Currency); err != nil {
			return err
		}
	}
	return nil
}

// New returns a Client. It panics on options Validate refuses, which are
// configuration errors the caller checks first.
func New(opts Options) *Client {
	if err := opts.Validate(); err != nil {
		panic(err.Error())
	}
	if opts.Password == "" {
		opts.Password = "000000"
	}
	if opts.Currency == "" {
		opts.Currency = "EUR"
	}
	if opts.Config == 0 {
		opts.Config = defaultConfigByte
	}
	if opts.T3 == 0 {
		opts.T3 = 5 * time.Second
	}
	if opts.T4 == 0 {
		opts.T4 = 180 * time.Second
	}
	if opts.Port.BaudRate == 0 {
		opts.Port.BaudRate = 9600
	}
	if opts.Port.StopBits == 0 {
		opts.Port.StopBits = 2
	}
	if opts.Port.DefaultTCPPort == 0 {
		opts.Port.DefaultTCPPort = 20007
	}
	if opts.Trace == nil {
		opts.Trace = device.NewTrace(200)
	}
	if opts.StatusEvery == 0 {
		opts.StatusEvery = time.Minute
	}
	if opts.RetryLater == 0 {
		opts.RetryLater = 5
	}
	pwd, err := Password(opts.Password)
	if err != nil {
		panic("zvt: New: " + err.Error())
	}
	cc, err := CurrencyCode(opts.Currency)
	if err != nil {
		panic("zvt: New: " + err.Error())
	}
	log := opts.Log.With().Str(logkey.DeviceID, opts.ID).Logger()
	c := &Client{
		opts: opts, pwd: pwd, cc: cc, log: log, trace: opts.Trace,
		tcp: strings.HasPrefix(opts.Spec, "tcp://") || strings.HasPrefix(opts.Spec, "tls://"),
	}
	c.link = device.NewLink(device.LinkOptions{
		ID: opts.ID, Spec: opts.Spec, Port: opts.Port, Log: opts.Log, Notifier: opts.Notifier,
		BackoffMin: opts.BackoffMin, BackoffMax: opts.BackoffMax, ConnectPerJob: opts.ConnectPerJob,
		Open: c.openPort,
	})
	return c
}

// Trace returns the ring of recent frames.
func (c *Client) Trace() *device.Trace { return c.trace }

// Link returns the underlying link, for its state.
func (c *Client) Link() *device.Link { return c.link }

// Register sends Registration 06 00 with a TLV container listing the
// commands posgate accepts (tag 26), so receipts come as text blocks.
func (c *Client) Register(ctx context.Context) error {
	_, err := c.exchange(ctx, RegistrationTLV(c.pwd, c.opts.Config, c.cc, PermittedCommands), nil, func(a APDU) {
		_, c.seqAgreed = SeqIDOf(a)
		// Status-byte bit 1: "Diagnosis necessary" (§2.1 Table 3).
		if fs, _ := DecodeFields(a.Data); fs != nil {
			if v, ok := fieldMap(fs)[0x19]; ok && len(v) == 1 && v[0]&0x02 != 0 {
				c.setNeedDiagnosis(true)
			}
		}
	})
	return err
}

// Authorize runs a sale (06 01).
func (c *Client) Authorize(ctx context.Context, p device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	cc, err := c.currency(p)
	if err != nil {
		return device.TxResult{}, err
	}
	return c.run(ctx, Authorization(p.Amount, cc), h)
}

// Refund runs a refund (06 31).
func (c *Client) Refund(ctx context.Context, p device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	cc, err := c.currency(p)
	if err != nil {
		return device.TxResult{}, err
	}
	return c.run(ctx, Refund(c.pwd, p.Amount, cc), h)
}

// Reverse voids a transaction by receipt number (06 30).
func (c *Client) Reverse(ctx context.Context, receiptNo int, h device.TxEventHandler) (device.TxResult, error) {
	if receiptNo <= 0 || receiptNo > 9999 {
		return device.TxResult{}, fmt.Errorf("reverse: %w: receipt number %d", ErrBadValue, receiptNo)
	}
	return c.run(ctx, Reversal(c.pwd, receiptNo), h)
}

// EndOfDay settles (06 50).
func (c *Client) EndOfDay(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	return c.run(ctx, EndOfDay(c.pwd), h)
}

// RepeatLastResult sends Repeat Receipt 06 20 with service byte 01, so the
// terminal sends the last Status-Information again.
func (c *Client) RepeatLastResult(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	return c.run(ctx, RepeatReceipt(c.pwd), h)
}

// LogOff sends 06 02.
func (c *Client) LogOff(ctx context.Context) error {
	_, err := c.run(ctx, LogOff(), nil)
	return err
}

// Status sends Status Enquiry 05 01.
func (c *Client) Status(ctx context.Context) (device.TerminalStatus, error) {
	var st device.TerminalStatus
	_, err := c.exchange(ctx, StatusEnquiry(c.pwd), nil, func(a APDU) {
		st = parseStatusCompletion(a.Data)
	})
	c.smu.Lock()
	c.status, c.statusAt, c.statusErr = st, time.Now(), err
	c.smu.Unlock()
	if err == nil && st.Code == 0xC2 { // diagnosis required (chapter 11)
		c.setNeedDiagnosis(true)
	}
	return st, err
}

// Abort asks the terminal to abort. If a transaction runs, 06 B0 goes out
// on its line between two terminal messages; otherwise as a command.
func (c *Client) Abort(ctx context.Context) error {
	c.mu.Lock()
	a := c.active
	c.mu.Unlock()
	if a != nil {
		reply := make(chan error, 1)
		select {
		case a.abort <- reply:
			select {
			case err := <-reply:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		case <-a.done: // it ended meanwhile; nothing to abort
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.link.Do(ctx, func(ctx context.Context, p device.Port) error {
		tr := c.transport(p)
		if err := tr.Send(ctx, AbortCmd()); err != nil {
			return fmt.Errorf("abort: %w", err)
		}
		resp, err := c.recv(ctx, tr, time.Now().Add(c.opts.T3))
		if err != nil {
			return fmt.Errorf("abort: %w", err)
		}
		if resp.IsNack() {
			return rejected("Abort", resp)
		}
		return nil
	})
}

func (c *Client) currency(p device.Charge) (int64, error) {
	if p.Amount <= 0 || p.Amount > 999999999999 {
		return 0, fmt.Errorf("%w: amount %d", ErrBadValue, p.Amount)
	}
	if p.Currency == "" {
		return c.cc, nil
	}
	return CurrencyCode(p.Currency)
}

func (c *Client) transport(p device.Port) Transport {
	if c.tcp {
		return NewTCP(p, c.traceFrame)
	}
	return NewSerial(p, SerialOptions{T1: c.opts.T1, T2: c.opts.T2, Trace: c.traceFrame})
}

// traceFrame logs a decoded, masked frame at Trace and keeps it in the ring.
func (c *Client) traceFrame(dir device.Direction, a APDU) {
	m := Masked(a)
	sum := Describe(a)
	c.trace.Add(device.Frame{At: time.Now().UTC(), Dir: dir, Summary: sum, Hex: strings.ToUpper(hex.EncodeToString(m.Encode()))})
	c.log.Trace().Str("dir", string(dir)).Str("apdu", sum).Hex("frame", m.Encode()).Msg("zvt frame")
}

// recv wraps Transport.Recv so a T3 expiry reads as such.
func (c *Client) recv(ctx context.Context, tr Transport, deadline time.Time) (APDU, error) {
	a, err := tr.Recv(ctx, deadline)
	if errors.Is(err, device.ErrTimeout) {
		return a, ErrT3
	}
	return a, err
}

func (c *Client) run(ctx context.Context, cmd APDU, h device.TxEventHandler) (device.TxResult, error) {
	return c.exchange(ctx, cmd, h, nil)
}

// exchange sends cmd on the owner goroutine and, when the terminal takes
// master rights, serves it until Completion or Abort. onCompletion sees the
// 06 0F, for commands whose completion carries data (Status Enquiry).
func (c *Client) exchange(ctx context.Context, cmd APDU, h device.TxEventHandler, onCompletion func(APDU)) (device.TxResult, error) {
	return c.exchangeTx(ctx, cmd, h, onCompletion, nil)
}

// exchangeUntilStatus is exchange for a command whose master phase ends
// with its Status-Information (Read Card): onStatus sees its data block.
func (c *Client) exchangeUntilStatus(ctx context.Context, cmd APDU, onStatus func([]byte)) (device.TxResult, error) {
	return c.exchangeTx(ctx, cmd, nil, nil, onStatus)
}

func (c *Client) exchangeTx(ctx context.Context, cmd APDU, h device.TxEventHandler, onCompletion func(APDU), onStatus func([]byte)) (device.TxResult, error) {
	var res device.TxResult
	name := CommandName(cmd)
	err := c.link.Do(ctx, func(ctx context.Context, p device.Port) error {
		// Registered before the command goes out, so an Abort that comes
		// while the terminal has yet to answer waits for the master phase
		// instead of queueing behind this whole transaction.
		a := &activeTx{abort: make(chan chan error), done: make(chan struct{}), endOnStatus: onStatus}
		c.mu.Lock()
		c.active = a
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.active = nil
			c.mu.Unlock()
			close(a.done)
		}()
		defer c.jobEnded()
		tr := c.transport(p)
		cmd := c.fillSeq(c.fillSync(cmd))
		if err := tr.Send(ctx, cmd); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		resp, err := c.recv(ctx, tr, time.Now().Add(c.opts.T3))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if resp.IsNack() {
			return rejected(name, resp)
		}
		if !resp.IsAck() {
			return fmt.Errorf("%s: %w: answered %s", name, ErrBadValue, CommandName(resp))
		}
		if cmd.Command() == CmdLogOff || cmd.Command() == CmdAbort {
			c.registered = c.registered && cmd.Command() != CmdLogOff
			return nil // no master rights change hands
		}
		res, err = c.serveMaster(ctx, tr, a, h, onCompletion)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if cmd.Command() == CmdRegistration {
			c.registered = true
			c.seqOn = c.opts.SequenceIDs && c.seqAgreed
		}
		return nil
	})
	return res, err
}
