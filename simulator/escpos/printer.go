package escpos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/text/encoding/charmap"

	"github.com/posgate/posgate/simulator"
)

// Options configure a simulated printer. Zero values take the defaults
// documented on each field.
type Options struct {
	// Width is the line width in characters, for rendering; default 42.
	Width int
	// Journal is how many receipts are kept; default 64. Older ones are
	// dropped (OnReceipt has seen them).
	Journal int
	// OnReceipt, if set, is called with every cut receipt, outside the
	// printer's lock.
	OnReceipt func(Receipt)
	Log       zerolog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Limits that keep the simulator's memory bounded whatever it is sent.
const (
	maxHeld  = 1 << 20 // bytes received but not yet processed
	maxLines = 4096    // lines of one receipt; more are dropped
	maxLine  = 512     // bytes of one line
)

// Printer is a simulated ESC/POS printer. Its methods are safe for
// concurrent use; Handle serves one line at a time.
type Printer struct {
	opts Options

	mu        sync.Mutex
	out       io.Writer // the current line, for answers and ASB; nil when none
	held      []byte    // received, not yet processed (all of it while offline)
	paperOut  bool
	paperLeft int // lines until the paper runs out; < 0 means unlimited
	nearEnd   bool
	coverOpen bool
	asb       byte // ASB mask (GS a n)
	mode      mode
	page      *charmap.Charmap
	qrData    []byte // the last stored QR symbol data
	cur       Receipt
	line      []byte
	journal   []Receipt
	seq       int
	counters  Counters
	pending   []Receipt // cut, not yet handed to OnReceipt
	rtScan    []byte    // a real-time request split across reads
}

type mode struct {
	bold   bool
	align  byte
	double bool
}

// Counters count what the printer did.
type Counters struct {
	Receipts     int // cut receipts
	Lines        int // printed lines
	StatusAsked  int // DLE EOT requests answered
	ASBSent      int // ASB messages sent
	Unknown      int // unknown commands skipped
	DroppedBytes int // bytes dropped because the receive buffer was full
}

// New returns a ready printer with paper and a closed cover.
func New(opts Options) *Printer {
	if opts.Width <= 0 {
		opts.Width = 42
	}
	if opts.Journal <= 0 {
		opts.Journal = 64
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Printer{opts: opts, paperLeft: -1, page: charmap.CodePage437}
}

// Handle serves one line (a pty session or a TCP connection) until it
// closes or ctx ends; it is a simulator.Handler.
func (p *Printer) Handle(ctx context.Context, c simulator.Conn) error {
	if closer, ok := c.(io.Closer); ok {
		stop := context.AfterFunc(ctx, func() { closer.Close() })
		defer stop()
	}
	p.mu.Lock()
	p.out = c
	p.rtScan = nil
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.out == c {
			p.out = nil
		}
		p.mu.Unlock()
	}()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.receive(buf[:n])
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("serve escpos printer: read: %w", err)
		}
	}
}

// receive answers the real-time requests in b at once (as a printer does
// on reception, even offline), then queues b and processes what it can.
func (p *Printer) receive(b []byte) {
	p.mu.Lock()
	p.scanRealtime(b)
	if room := maxHeld - len(p.held); len(b) > room {
		p.counters.DroppedBytes += len(b) - max(room, 0)
		b = b[:max(room, 0)]
	}
	p.held = append(p.held, b...)
	p.process()
	done := p.takePending()
	p.mu.Unlock()
	p.deliver(done)
}

// scanRealtime finds DLE EOT n in the received bytes, across reads.
// Caller holds mu.
func (p *Printer) scanRealtime(b []byte) {
	s := append(p.rtScan, b...)
	i := 0
	for ; i < len(s); i++ {
		if s[i] != 0x10 {
			continue
		}
		if len(s)-i < 3 {
			break
		}
		if s[i+1] == 0x04 {
			p.answerRealtime(s[i+2])
			i += 2
		}
	}
	p.rtScan = append([]byte(nil), s[min(i, len(s)):]...)
}

// answerRealtime answers DLE EOT n with the byte the reference defines.
// Caller holds mu.
func (p *Printer) answerRealtime(n byte) {
	b := byte(0x12) // bits 1 and 4 fixed on
	switch n {
	case 1:
		if p.offline() {
			b |= 0x08 | 0x20 // offline, waiting for online recovery
		}
	case 2:
		if p.coverOpen {
			b |= 0x04
		}
		if p.paperOut {
			b |= 0x20 // printing stopped by paper end
		}
	case 3:
	case 4:
		if p.nearEnd || p.paperOut {
			b |= 0x0C
		}
		if p.paperOut {
			b |= 0x60
		}
	default:
		return
	}
	p.counters.StatusAsked++
	p.send([]byte{b})
}

func (p *Printer) offline() bool { return p.paperOut || p.coverOpen }

// asbStatus is the four ASB bytes of the current state.
func (p *Printer) asbStatus() []byte {
	b := []byte{0x10, 0, 0, 0}
	if p.offline() {
		b[0] |= 0x08
	}
	if p.coverOpen {
		b[0] |= 0x20
	}
	if p.nearEnd || p.paperOut {
		b[2] |= 0x03
	}
	if p.paperOut {
		b[2] |= 0x0C
	}
	return b
}

// sendASB sends the status if ASB is on. Caller holds mu.
func (p *Printer) sendASB() {
	if p.asb&0x0E == 0 {
		return
	}
	p.counters.ASBSent++
	p.send(p.asbStatus())
}

// send writes an answer on the current line. Caller holds mu.
func (p *Printer) send(b []byte) {
	if p.out == nil {
		return
	}
	if _, err := p.out.Write(b); err != nil {
		p.opts.Log.Debug().Err(err).Msg("escpos sim write failed")
	}
}

// process runs the held commands while the printer is online. A command
// that needs paper when there is none stays held. Caller holds mu.
func (p *Printer) process() {
	for len(p.held) > 0 {
		op, rest, err := Parse(p.held)
		if errors.Is(err, ErrIncomplete) {
			return
		}
		if err != nil {
			p.counters.Unknown++
			p.held = rest
			continue
		}
		if p.offline() {
			return
		}
		if needsPaper(op) && p.paperLeft == 0 {
			p.paperOut = true
			p.sendASB()
			return
		}
		p.exec(op)
		p.held = rest
	}
	p.held = nil // release the buffer's memory once drained
}

func needsPaper(op Op) bool {
	return op.Kind == LineFeed || op.Kind == FeedLines || op.Kind == QR && op.Fn == 81
}

// exec carries out one command. Caller holds mu.
func (p *Printer) exec(op Op) {
	switch op.Kind {
	case Text:
		if room := maxLine - len(p.line); room > 0 {
			p.line = append(p.line, op.Data[:min(len(op.Data), room)]...)
		}
	case LineFeed:
		p.printLine()
	case FeedLines:
		if len(p.line) > 0 {
			p.printLine()
		}
	case Init:
		p.mode, p.page, p.line = mode{}, charmap.CodePage437, nil
	case CodeTable:
		if cm := codeTable(op.N); cm != nil {
			p.page = cm
		}
	case Bold:
		p.mode.bold = op.N&1 == 1
	case Justify:
		p.mode.align = op.N % 48 // n = 0…2 or '0'…'2'
	case CharSize:
		p.mode.double = op.N != 0
	case PrintMode:
		p.mode.bold = op.N&0x08 != 0
		p.mode.double = op.N&0x30 != 0
	case QR:
		p.execQR(op)
	case Cut:
		if len(p.line) > 0 {
			p.printLine()
		}
		p.cut()
	case TransmitStatus:
		if op.N == 1 || op.N == 49 {
			var b byte
			if p.nearEnd {
				b |= 0x03
			}
			p.send([]byte{b})
		}
	case ASB:
		p.asb = op.N
		p.sendASB() // the first status goes out when ASB is enabled
	case Unknown:
		p.counters.Unknown++
	}
}

func (p *Printer) execQR(op Op) {
	switch op.Fn {
	case 80: // function 180: store; m = 48, then the data
		if len(op.Data) >= 1 && op.Data[0] == 48 {
			p.qrData = append(p.qrData[:0], op.Data[1:]...)
		}
	case 81: // function 181: print the stored symbol
		if len(p.qrData) > 0 && len(p.cur.Lines) < maxLines {
			p.cur.Lines = append(p.cur.Lines, Line{QR: string(p.qrData), Align: int(p.mode.align)})
			p.consumePaper()
		}
	}
}

func (p *Printer) printLine() {
	if len(p.cur.Lines) < maxLines {
		p.cur.Lines = append(p.cur.Lines, Line{Text: decode(p.page, p.line), Bold: p.mode.bold,
			Double: p.mode.double, Align: int(p.mode.align)})
	}
	p.line = p.line[:0]
	p.counters.Lines++
	p.consumePaper()
}

// consumePaper counts down PaperOutAfter.
func (p *Printer) consumePaper() {
	if p.paperLeft > 0 {
		p.paperLeft--
	}
}

// cut ends the receipt: into the journal, and to OnReceipt.
func (p *Printer) cut() {
	if len(p.cur.Lines) == 0 {
		return
	}
	p.seq++
	p.cur.Seq, p.cur.Time, p.cur.Width = p.seq, p.opts.Now().UTC(), p.opts.Width
	p.journal = append(p.journal, p.cur)
	if len(p.journal) > p.opts.Journal {
		p.journal = append([]Receipt(nil), p.journal[len(p.journal)-p.opts.Journal:]...)
	}
	p.counters.Receipts++
	if p.opts.OnReceipt != nil && len(p.pending) < p.opts.Journal {
		p.pending = append(p.pending, p.cur)
	}
	p.cur = Receipt{}
}

func (p *Printer) takePending() []Receipt {
	out := p.pending
	p.pending = nil
	return out
}

func (p *Printer) deliver(rs []Receipt) {
	for _, r := range rs {
		p.opts.OnReceipt(r)
	}
}

// SetPaperOut takes the paper out or puts it back. Out of paper the
// printer stops, holds what it was sent and answers only real-time
// requests; paper back in, it prints what it holds.
func (p *Printer) SetPaperOut(out bool) {
	p.mu.Lock()
	p.paperOut = out
	if !out {
		p.paperLeft = -1
	}
	p.sendASB()
	p.process()
	done := p.takePending()
	p.mu.Unlock()
	p.deliver(done)
}

// PaperOutAfter lets n more lines (or QR codes) print; then the paper is
// out, in the middle of whatever is being printed.
func (p *Printer) PaperOutAfter(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paperLeft = max(n, 0)
}

// SetPaperNearEnd sets the near-end sensor.
func (p *Printer) SetPaperNearEnd(near bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nearEnd = near
	p.sendASB()
}

// SetCoverOpen opens or closes the cover; open, it stops like paper out.
func (p *Printer) SetCoverOpen(open bool) {
	p.mu.Lock()
	p.coverOpen = open
	p.sendASB()
	p.process()
	done := p.takePending()
	p.mu.Unlock()
	p.deliver(done)
}

// Journal returns the kept receipts, oldest first.
func (p *Printer) Journal() []Receipt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Receipt(nil), p.journal...)
}

// Counters returns what the printer did so far.
func (p *Printer) Counters() Counters {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counters
}

// Held returns how many received bytes wait to be processed.
func (p *Printer) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// codeTable returns the encoding of ESC t n for the tables the simulator
// knows; nil for others (the current one stays).
func codeTable(n byte) *charmap.Charmap {
	switch n {
	case 0:
		return charmap.CodePage437
	case 2:
		return charmap.CodePage850
	case 16:
		return charmap.Windows1252
	case 17:
		return charmap.CodePage866
	case 18:
		return charmap.CodePage852
	case 19:
		return charmap.CodePage858
	case 45:
		return charmap.Windows1250
	case 46:
		return charmap.Windows1251
	}
	return nil
}

func decode(cm *charmap.Charmap, b []byte) string {
	r := make([]rune, len(b))
	for i, x := range b {
		r[i] = cm.DecodeByte(x)
	}
	return string(r)
}
