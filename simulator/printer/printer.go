package printer

import (
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Options configures a simulated printer. Zero values take the defaults
// documented on each field.
type Options struct {
	Model        string // default "FP-700X"
	Firmware     string // default "1.00BG 23Mar22 1000"
	Serial       string // default "DT000600"
	FiscalMemory string // default "02517985"
	// VATRates per group A…H in hundredths of a percent, used to print the
	// VAT lines and answered to 32h; datecs.RateDisabled (100.00 %) marks
	// a group that takes no sales. Default A 0 %, B 20 %, C 20 %, D 9 %,
	// E…H 0 %.
	VATRates *[8]int64
	// Now is the printer's clock; default time.Now. SetDateTime moves it.
	Now      func() time.Time
	Location *time.Location // default time.Local
	// SynInterval is how often the printer sends SYN while it executes a
	// slow command; default 60 ms (X spec).
	SynInterval time.Duration
	// ReportDelay is how long an X or Z report keeps the printer busy; default 0.
	ReportDelay time.Duration
	// OnDocument, if set, is called with every finished document (a closed
	// or cancelled receipt, a report, a cash operation), outside the lock.
	OnDocument func(Document)
	// Journal is how many finished documents the journal keeps, newest
	// last; past it the oldest are dropped. Default 1000.
	Journal int
	Log     zerolog.Logger
}

func (o Options) withDefaults() Options {
	if o.Model == "" {
		o.Model = "FP-700X"
	}
	if o.Firmware == "" {
		o.Firmware = "1.00BG 23Mar22 1000"
	}
	if o.Serial == "" {
		o.Serial = "DT000600"
	}
	if o.FiscalMemory == "" {
		o.FiscalMemory = "02517985"
	}
	if o.VATRates == nil {
		o.VATRates = &[8]int64{0, 2000, 2000, 900}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.SynInterval == 0 {
		o.SynInterval = 60 * time.Millisecond
	}
	if o.Journal <= 0 {
		o.Journal = 1000
	}
	return o
}

// DocKind is the kind of a printed document.
type DocKind string

// Document kinds.
const (
	KindFiscal    DocKind = "fiscal"
	KindStorno    DocKind = "storno"
	KindNonFiscal DocKind = "non-fiscal"
	KindXReport   DocKind = "x-report"
	KindZReport   DocKind = "z-report"
	KindCashIn    DocKind = "cash-in"
	KindCashOut   DocKind = "cash-out"
	KindDuplicate DocKind = "duplicate" // a copy of the last fiscal receipt (6Dh)
)

// Document is one document in the printer's journal.
type Document struct {
	Kind             DocKind
	Slip             int // every document opened gets the next slip number
	Number           int // fiscal number (receipts) or Z number (Z reports); 0 if none
	UniqueSaleNumber string
	// QR is the fiscal QR code printed on a closed fiscal or storno
	// receipt: "FM*number*YYYY-MM-DD*hh:mm:ss*total" (Н-18 appendix 18a).
	QR        string
	Duplicate bool // a duplicate copy (KindDuplicate), printed with 6Dh
	Cancelled bool
	Items     []Item
	Comments  []string
	Groups    [8]int64 // receipt amount per VAT group
	Total     int64
	Payments  []Payment
	Change    int64
	Time      time.Time
	Text      string // the document as printed
}

// Item is a sale line as registered.
type Item struct {
	Name     string
	Group    int   // 1…8
	Price    int64 // minor units
	Quantity int64 // thousandths
	Amount   int64 // after the line's discount or surcharge
}

// Payment is a payment as registered.
type Payment struct {
	Mode   int
	Amount int64
}

// Counters are the printer's registers.
type Counters struct {
	Slip   int      // documents opened
	Fiscal int      // fiscal and storno receipts closed (the last fiscal number)
	Z      int      // Z reports printed
	Totals [8]int64 // sales per VAT group since the last Z report
	Storno [8]int64 // storno per VAT group since the last Z report
	// Cash in the drawer, and put in / taken out since the last Z report.
	CashSum, CashIn, CashOut int64
	ReceiptOpen              bool
}

// Printer is a simulated Datecs X fiscal printer. Serve it on any
// io.ReadWriter (a pty master, a TCP connection); its state and journal
// are shared by all the lines it serves. All methods are safe for
// concurrent use.
type Printer struct {
	opts Options
	log  zerolog.Logger

	mu sync.Mutex // guards everything below
	st state
	// the line
	lastSeq    byte
	lastAnswer []byte
	haveLast   bool
	lineDead   bool
	// fault switches
	paperOut, coverOpen bool
	paperLeft           int // printing commands left before the paper runs out; -1 = no limit
	busyNext            time.Duration
	garbageNext         int
	dropAnswers         int
	dropLineAfter       int // command code, -1 = none
	loseAnswerTo        int // command code, -1 = none
	frames              int // requests executed (not replays)
}

// New returns a simulated printer with an empty journal.
func New(opts Options) *Printer {
	opts = opts.withDefaults()
	return &Printer{
		opts:          opts,
		log:           opts.Log,
		st:            state{vat: *opts.VATRates, journalMax: opts.Journal},
		paperLeft:     -1,
		dropLineAfter: -1,
		loseAnswerTo:  -1,
	}
}

// Journal returns the finished documents the journal holds (at most
// Options.Journal, the newest), oldest first.
func (p *Printer) Journal() []Document {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.st.journal)
}

// Receipts returns the fiscal and storno receipts that were closed (not
// cancelled), oldest first.
func (p *Printer) Receipts() []Document {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Document
	for _, d := range p.st.journal {
		if (d.Kind == KindFiscal || d.Kind == KindStorno) && !d.Cancelled {
			out = append(out, d)
		}
	}
	return out
}

// Counters returns the printer's registers.
func (p *Printer) Counters() Counters {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.st
	return Counters{
		Slip: s.slip, Fiscal: s.fiscalNo, Z: s.zNo, Totals: s.dayTotals, Storno: s.dayStorno,
		CashSum: s.cashSum, CashIn: s.cashIn, CashOut: s.cashOut, ReceiptOpen: s.rec != nil,
	}
}

// Executed returns how many request frames the printer executed; a
// replayed answer to a repeated SEQ does not count.
func (p *Printer) Executed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frames
}

// SetPaperOut takes the paper out or puts it back. Out of paper, every
// command that prints fails with status bit 2.0.
func (p *Printer) SetPaperOut(out bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paperOut = out
	if !out {
		p.paperLeft = -1
	}
}

// PaperOutAfter lets n more printing commands succeed; then the paper is out.
func (p *Printer) PaperOutAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paperLeft = n
}

// SetCoverOpen opens or closes the cover. With the cover open, every
// command that prints fails with status bit 0.6.
func (p *Printer) SetCoverOpen(open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.coverOpen = open
}

// BusyFor makes the next command take d, sending SYN meanwhile.
func (p *Printer) BusyFor(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.busyNext = d
}

// Garbage puts n bytes of line noise before the next answer. The noise
// never contains PRE, NAK or SYN, so it only tests resynchronisation.
func (p *Printer) Garbage(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.garbageNext = n
}

// DropAnswers executes the next n requests but loses their answers, as a
// noisy line would; the host's resend with the same SEQ gets a replay.
func (p *Printer) DropAnswers(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropAnswers = n
}

// LoseAnswerTo executes the next request with command code cmd but loses
// its answer once; the host's resend (same SEQ) gets the replayed answer.
func (p *Printer) LoseAnswerTo(cmd uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loseAnswerTo = int(cmd)
}

// DropLineAfter executes the next request with command code cmd, then the
// line goes dead before the answer: Serve returns simulator.ErrHangup (the
// TCP connection is closed, the pty hung up and replaced), and until
// RestoreLine every frame on any line is ignored.
func (p *Printer) DropLineAfter(cmd uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLineAfter = int(cmd)
}

// RestoreLine brings a dropped line back.
func (p *Printer) RestoreLine() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lineDead = false
	p.dropLineAfter = -1
}

// ShiftClock moves the printer's clock by d (negative: back), as a clock
// that drifted or lost its battery would; 3Dh sets it again.
func (p *Printer) ShiftClock(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.st.clockOffset += d
}

// Clock returns the printer's clock now.
func (p *Printer) Clock() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.now()
}
