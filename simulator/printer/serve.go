package printer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator"
)

// Printer side control bytes.
const (
	pre = 0x01
	nak = 0x15
	syn = 0x16
)

// baseStatus is a fiscalized printer with no faults: tax number, serial and
// FM number set (4.1, 4.2), FM formatted, fiscalized, VAT set (5.1, 5.3, 5.4).
var baseStatus = []datecs.Bit{datecs.BitTaxNumberSet, datecs.BitSerialSet,
	datecs.BitFMFormatted, datecs.BitFiscalized, datecs.BitVATSet}

// Serve answers the host on rw until ctx is cancelled, rw fails or the
// line is dropped (DropLineAfter), and returns simulator.ErrHangup in that
// last case so that simulator.ServePTY and simulator.ServeTCP hang up the
// line like a pulled cable. If rw is an io.Closer, Serve closes it when ctx
// is cancelled, to end a blocked Read. It returns nil when ctx is cancelled
// or the host closes the line.
func (p *Printer) Serve(ctx context.Context, rw io.ReadWriter) error {
	if closer, ok := rw.(io.Closer); ok {
		stop := context.AfterFunc(ctx, func() { closer.Close() })
		defer stop()
	}
	var buf []byte
	tmp := make([]byte, 512)
	for {
		n, err := rw.Read(tmp)
		if n > 0 {
			buf = append(buf, tmp[:n]...)
			var hangup bool
			if buf, hangup = p.process(ctx, rw, buf); hangup {
				return simulator.ErrHangup
			}
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe) {
				return nil
			}
			return fmt.Errorf("serve printer: read: %w", err)
		}
	}
}

// process handles the complete frames at the start of buf and returns what
// is left, and whether the line was just dropped.
func (p *Printer) process(ctx context.Context, w io.Writer, buf []byte) ([]byte, bool) {
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, pre)
		if i < 0 {
			return buf[:0], false
		}
		buf = buf[i:]
		m, rest, err := datecs.X.Decode(buf)
		switch {
		case errors.Is(err, datecs.ErrIncomplete):
			return buf, false
		case err != nil:
			// Bad checksum or format: NAK, and the host sends the frame again.
			p.log.Debug().Err(err).Msg("bad frame")
			if !p.dead() {
				w.Write([]byte{nak})
			}
			if errors.Is(err, datecs.ErrChecksum) {
				buf = rest
			} else {
				buf = buf[1:]
				if j := bytes.IndexByte(buf, pre); j >= 0 {
					buf = buf[j:]
				} else {
					buf = buf[:0]
				}
			}
			continue
		case m.IsAnswer():
			buf = rest
			continue
		}
		buf = rest
		if p.handle(ctx, w, m) {
			return buf[:0], true
		}
	}
	return buf, false
}

func (p *Printer) dead() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lineDead
}

// handle executes one request, or replays the last answer if its SEQ
// repeats the last frame's, and writes the answer. It reports whether the
// request dropped the line.
func (p *Printer) handle(ctx context.Context, w io.Writer, m datecs.Msg) (hangup bool) {
	p.mu.Lock()
	if p.lineDead {
		p.mu.Unlock()
		return false
	}
	if p.haveLast && m.Seq == p.lastSeq {
		ans := p.lastAnswer
		drop := p.takeDrop()
		p.mu.Unlock()
		p.log.Debug().Uint8("seq", m.Seq).Msg("repeated SEQ, replaying answer")
		if !drop {
			w.Write(ans)
		}
		return false
	}
	delay := p.busyNext
	p.busyNext = 0
	if m.Cmd == datecs.CmdReport {
		delay += p.opts.ReportDelay
	}
	p.mu.Unlock()

	// Executing a slow command: SYN every SynInterval until done.
	if delay > 0 {
		end := time.Now().Add(delay)
		t := time.NewTicker(p.opts.SynInterval)
		for time.Now().Before(end) {
			if _, err := w.Write([]byte{syn}); err != nil {
				break
			}
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
		}
		t.Stop()
	}

	p.mu.Lock()
	res := p.exec(m.Cmd, m.Data)
	p.frames++
	ans := p.answer(m, res)
	p.lastSeq, p.lastAnswer, p.haveLast = m.Seq, ans, true
	garbage := p.garbageNext
	p.garbageNext = 0
	drop := p.takeDrop()
	if p.loseAnswerTo == int(m.Cmd) {
		p.loseAnswerTo, drop = -1, true
	}
	if p.dropLineAfter == int(m.Cmd) {
		p.lineDead, p.dropLineAfter = true, -1
		drop, hangup = true, true
	}
	onDoc := p.opts.OnDocument
	p.mu.Unlock()

	if res.doc != nil && onDoc != nil {
		onDoc(*res.doc)
	}
	if garbage > 0 {
		w.Write(noise(garbage))
	}
	if !drop {
		w.Write(ans)
	}
	return hangup
}

// takeDrop consumes one lost answer. Caller must hold mu.
func (p *Printer) takeDrop() bool {
	if p.dropAnswers > 0 {
		p.dropAnswers--
		return true
	}
	return false
}

// answer builds the answer frame. Caller must hold mu.
func (p *Printer) answer(m datecs.Msg, res result) []byte {
	st := []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}
	for _, b := range baseStatus {
		datecs.Set(st, b)
	}
	for _, b := range res.bits {
		datecs.Set(st, b)
	}
	if p.paperOut {
		datecs.Set(st, datecs.BitPaperOut)
	}
	if p.coverOpen {
		datecs.Set(st, datecs.BitCoverOpen)
	}
	if p.st.rec != nil {
		datecs.Set(st, datecs.BitReceiptOpen)
	}
	if p.st.nonFiscal != nil {
		datecs.Set(st, datecs.BitNonFiscalOpen)
	}
	for _, b := range []datecs.Bit{datecs.BitSyntax, datecs.BitInvalidCmd, datecs.BitMechanism,
		datecs.BitOverflow, datecs.BitNotPermitted, datecs.BitPaperOut} {
		if datecs.Has(st, b) {
			datecs.Set(st, datecs.BitGeneralError)
		}
	}
	ans, err := datecs.X.Encode(datecs.Msg{Seq: m.Seq, Cmd: m.Cmd, Data: res.data, Status: st})
	if err != nil {
		// Only a simulator bug gets here: answer with the error code alone.
		p.log.Error().Err(err).Msg("cannot encode answer")
		ans, _ = datecs.X.Encode(datecs.Msg{Seq: m.Seq, Cmd: m.Cmd, Data: datecs.Params(fmt.Sprint(CodeOverflow)), Status: st})
	}
	return ans
}

// noise returns n random bytes other than PRE, NAK and SYN.
func noise(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		for {
			c := byte(rand.IntN(256))
			if c != pre && c != nak && c != syn {
				b[i] = c
				break
			}
		}
	}
	return b
}

// Handle is a simulator.Handler: serve the printer with
// simulator.ServePTY(ctx, sim.Handle, opts) or
// simulator.ServeTCP(ctx, addr, sim.Handle, log).
func (p *Printer) Handle(ctx context.Context, c simulator.Conn) error { return p.Serve(ctx, c) }

// ServeListener accepts connections on ln until ctx is cancelled and
// serves the newest one: like a printer's LAN port, it talks to one host at
// a time, so a new connection closes the one before. It closes ln and
// returns after every connection has ended.
func (p *Printer) ServeListener(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	var prev net.Conn
	for {
		c, err := ln.Accept()
		if err != nil {
			if prev != nil {
				prev.Close()
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("serve printer: accept: %w", err)
		}
		if prev != nil {
			prev.Close()
		}
		prev = c
		p.log.Info().Str("remote", c.RemoteAddr().String()).Msg("host connected")
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if err := p.Serve(ctx, c); err != nil && !errors.Is(err, simulator.ErrHangup) {
				p.log.Warn().Err(err).Msg("connection ended")
			}
		}()
	}
}
