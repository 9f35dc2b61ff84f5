package escpos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
)

// ErrNoAnswer means the printer did not answer a status request in time.
// It wraps device.ErrTimeout, so a print job waits for the printer.
var ErrNoAnswer = fmt.Errorf("ESC/POS printer did not answer: %w", device.ErrTimeout)

// Options configure a Printer or Device. Zero values take the defaults
// documented on each field.
type Options struct {
	// CodePage for text; default CP852.
	CodePage CodePage
	// Width is the number of characters of a line in the normal font:
	// 42 on 80 mm paper with a 512-dot head (TM-T88), 48 with a 576-dot
	// head (TM-T20), 32 on 58 mm paper. Default 42.
	Width int
	// QRModuleSize is the QR module size in dots (1–16); default 6.
	QRModuleSize byte
	// NoASB leaves Automatic Status Back off. By default every job enables
	// it (GS a) and the status messages it brings are decoded.
	NoASB bool
	// ReplyTimeout bounds the wait for each real-time status answer;
	// default 1 s.
	ReplyTimeout time.Duration
	// PrintTimeout bounds the wait, after a job's last byte, for the
	// printer to confirm that it processed the job (its answer to GS r 1).
	// Paper put back in time lets the job finish as the original; after
	// the timeout the job is interrupted and its retry prints a copy.
	// Default 60 s.
	PrintTimeout time.Duration
	// Ledger remembers attempts per document; default a MemoryLedger,
	// which covers the life of the process only. The print jobs pass
	// fiscal.NewLedger, which persists with the job.
	Ledger device.PrintLedger
	Log    zerolog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.CodePage.cm == nil {
		o.CodePage = CP852
	}
	if o.Width <= 0 {
		o.Width = 42
	}
	if o.QRModuleSize == 0 {
		o.QRModuleSize = 6
	}
	if o.ReplyTimeout <= 0 {
		o.ReplyTimeout = time.Second
	}
	if o.PrintTimeout <= 0 {
		o.PrintTimeout = time.Minute
	}
	if o.Ledger == nil {
		o.Ledger = &device.MemoryLedger{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Printer is an ESC/POS printer on one open port. It is not safe for
// concurrent use: one goroutine owns the port (Device runs it on a
// device.Link).
type Printer struct {
	port device.Port
	opts Options
	lay  layout

	pending []byte // bytes read but not yet consumed
	asb     []byte // an ASB message being collected

	mu     sync.Mutex // guards status
	status *Status    // the last status seen, from DLE EOT or ASB
}

var (
	_ device.SlipPrinter    = (*Printer)(nil)
	_ device.ReceiptPrinter = (*Printer)(nil)
)

// New returns a printer on p. It sends nothing.
func New(p device.Port, opts Options) *Printer {
	opts = opts.withDefaults()
	return &Printer{port: p, opts: opts, lay: layout{page: opts.CodePage, width: opts.Width,
		qrSize: opts.QRModuleSize, asb: !opts.NoASB}}
}

// LastStatus returns the last status the printer reported; ok is false
// before the first.
func (p *Printer) LastStatus() (Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == nil {
		return Status{}, false
	}
	return *p.status, true
}

func (p *Printer) setStatus(s Status) {
	p.mu.Lock()
	p.status = &s
	p.mu.Unlock()
}

// Status asks the four real-time statuses (DLE EOT 1…4), which the printer
// answers at once even while it is offline or holding a job.
func (p *Printer) Status(ctx context.Context) (Status, error) {
	var b [4]byte
	for i, n := range []byte{StatusPrinter, StatusOffline, StatusError, StatusPaper} {
		if err := p.write(RealtimeStatus(n)); err != nil {
			return Status{}, fmt.Errorf("status: %w", err)
		}
		r, err := p.await(ctx, time.Now().Add(p.opts.ReplyTimeout), isRealtimeReply)
		if err != nil {
			return Status{}, fmt.Errorf("status DLE EOT %d: %w", n, err)
		}
		b[i] = r
	}
	s, err := ParseRealtime(b[0], b[1], b[2], b[3])
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	p.setStatus(s)
	return s, nil
}

// PrintReceipt implements device.ReceiptPrinter: doc is laid out by
// ReceiptSlip and printed as PrintSlip prints. The result has no receipt
// number (a receipt printer has none); Recovered is set when nothing was
// sent because an earlier call printed it, and Recovered and Finished
// both when it was printed as a marked copy after an interrupted attempt.
func (p *Printer) PrintReceipt(ctx context.Context, doc device.Receipt) (device.ReceiptResult, error) {
	s, total := ReceiptSlip(doc, p.opts.Width)
	res, err := p.print(ctx, s, total)
	if err != nil {
		return device.ReceiptResult{}, err
	}
	return device.ReceiptResult{ID: doc.ID, Amount: total, Time: res.Time,
		Recovered: res.Recovered || res.Copy, Finished: res.Copy}, nil
}

// PrintSlip implements device.SlipPrinter.
func (p *Printer) PrintSlip(ctx context.Context, s device.Slip) (device.SlipResult, error) {
	return p.print(ctx, s, 0)
}

// print prints s once, as device.SlipPrinter describes:
//
//  1. a document whose attempt is Done is not sent again;
//  2. the printer must be ready (DLE EOT 1…4) before the first byte, else
//     the error says why and nothing is recorded;
//  3. the attempt is recorded (durably, by the ledger) before the first
//     byte, so a crash or a lost line after it makes the next try a copy;
//  4. after the job, GS r 1: the printer answers it only once it has
//     processed every byte before it, so its answer confirms the print;
//     it is awaited up to PrintTimeout, through a paper change;
//  5. then the attempt is Done.
func (p *Printer) print(ctx context.Context, s device.Slip, total int64) (device.SlipResult, error) {
	if err := validateSlip(s); err != nil {
		return device.SlipResult{}, fmt.Errorf("print %s: %w", s.ID, err)
	}
	log := p.opts.Log.With().Str(logkey.InvoiceID, s.ID).Logger()
	a, known, err := p.opts.Ledger.LoadAttempt(ctx, s.ID)
	if err != nil {
		return device.SlipResult{}, fmt.Errorf("print %s: load attempt: %w", s.ID, err)
	}
	if known && a.Done {
		return device.SlipResult{ID: s.ID, Copy: a.Result.Finished, Recovered: true, Time: a.Result.Time}, nil
	}
	p.drain()
	st, err := p.Status(ctx)
	if err != nil {
		return device.SlipResult{}, fmt.Errorf("print %s: %w", s.ID, err)
	}
	if err := st.Err(); err != nil {
		return device.SlipResult{}, fmt.Errorf("print %s: %w", s.ID, err)
	}
	copy := known
	a = device.PrintAttempt{ID: s.ID, Amount: total}
	if err := p.opts.Ledger.SaveAttempt(ctx, a); err != nil {
		return device.SlipResult{}, fmt.Errorf("print %s: save attempt: %w", s.ID, err)
	}
	job := append(p.lay.render(s, copy), PaperSensorStatus()...)
	if err := p.write(job); err != nil {
		return device.SlipResult{}, fmt.Errorf("print %s: %w", s.ID, err)
	}
	if err := p.confirm(ctx); err != nil {
		return device.SlipResult{}, fmt.Errorf("print %s: %w", s.ID, err)
	}
	now := p.opts.Now().UTC()
	a.Done = true
	a.Result = device.ReceiptResult{ID: s.ID, Amount: total, Time: now, Recovered: copy, Finished: copy}
	if err := p.opts.Ledger.SaveAttempt(ctx, a); err != nil {
		return device.SlipResult{}, fmt.Errorf("print %s: save printed: %w", s.ID, err)
	}
	log.Debug().Bool("copy", copy).Int("bytes", len(job)).Msg("slip printed")
	return device.SlipResult{ID: s.ID, Copy: copy, Time: now}, nil
}

// confirm waits for the answer to the job's closing GS r 1. While it
// waits it asks the real-time status every few seconds, so a paper-out or
// open cover is known (and the last status says so) if the wait times out.
func (p *Printer) confirm(ctx context.Context) error {
	deadline := time.Now().Add(p.opts.PrintTimeout)
	poll := min(p.opts.PrintTimeout, 2*time.Second)
	for {
		step := min(time.Until(deadline), poll)
		b, err := p.await(ctx, time.Now().Add(step), isPlainReply)
		if err == nil {
			near, _ := paperSensor(b)
			if near {
				p.opts.Log.Warn().Msg("printer paper near end")
			}
			return nil
		}
		if !errors.Is(err, ErrNoAnswer) {
			return fmt.Errorf("confirm print: %w", err)
		}
		st, serr := p.Status(ctx)
		if time.Now().After(deadline) {
			if serr == nil && st.Err() != nil {
				return fmt.Errorf("confirm print: %w", st.Err())
			}
			return fmt.Errorf("confirm print: %w", ErrNoAnswer)
		}
		if serr != nil && !errors.Is(serr, ErrNoAnswer) {
			return fmt.Errorf("confirm print: %w", serr)
		}
	}
}

// write writes b whole.
func (p *Printer) write(b []byte) error {
	for len(b) > 0 {
		n, err := p.port.Write(b)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		b = b[n:]
	}
	return nil
}

// drain reads what the printer sent since the last exchange (late answers,
// ASB messages) without waiting for more than a moment.
func (p *Printer) drain() {
	ctx := context.Background()
	for range 64 {
		if _, err := p.await(ctx, time.Now().Add(20*time.Millisecond), func(byte) bool { return false }); err != nil {
			return
		}
	}
}

// await returns the next byte the printer sends that match accepts,
// consuming ASB messages on the way (they update LastStatus) and dropping
// bytes of any other class. It fails with ErrNoAnswer at deadline.
func (p *Printer) await(ctx context.Context, deadline time.Time, accept func(byte) bool) (byte, error) {
	buf := make([]byte, 64)
	for {
		for len(p.pending) > 0 {
			b := p.pending[0]
			p.pending = p.pending[1:]
			switch {
			case len(p.asb) > 0:
				p.asb = append(p.asb, b)
				if len(p.asb) == 4 {
					if s, err := ParseASB([4]byte(p.asb)); err == nil {
						p.setStatus(s)
					}
					p.asb = p.asb[:0]
				}
			case isASBHeader(b) && !p.opts.NoASB:
				p.asb = append(p.asb, b)
			case accept(b):
				return b, nil
			default:
				p.opts.Log.Debug().Hex("byte", []byte{b}).Msg("unexpected byte from printer")
			}
		}
		n, err := device.Read(ctx, p.port, buf, deadline)
		if errors.Is(err, device.ErrTimeout) {
			return 0, ErrNoAnswer
		}
		if err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		p.pending = append(p.pending, buf[:n]...)
	}
}
