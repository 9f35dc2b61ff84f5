package datecs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
	"github.com/rs/zerolog"
)

// Transport errors of an exchange.
var (
	// ErrNoAnswer means the printer sent no valid answer to a frame after
	// all resends (X spec: "no connection / hardware fault").
	ErrNoAnswer = errors.New("no answer from printer")
	// ErrBusyTooLong means the printer kept answering SYN ("still
	// executing") for longer than Options.MaxBusy.
	ErrBusyTooLong = errors.New("printer busy for too long")
)

// Options tunes a connection. Zero values take the documented defaults.
type Options struct {
	Profile Profile // X (the default) or ISL
	// Timeout is how long the host waits for the first byte of an answer
	// (or for the next byte, or the next SYN) before it sends the same
	// frame again; 500 ms per the spec.
	Timeout time.Duration
	// Resends is how many times one frame is sent again after a timeout,
	// a NAK or a corrupt answer; default 5 (six writes, as ErpNet.FP does).
	Resends int
	// MaxBusy bounds how long SYN keeps the host waiting for one answer;
	// default 2 minutes (a Z report with many records is slow).
	MaxBusy time.Duration
	// Location is the printer's clock zone; default time.Local.
	Location *time.Location
	// Ledger keeps PrintReceipt's attempts; default a MemoryLedger.
	Ledger device.PrintLedger
	// OnConnect, if set, is called by New once the printer is probed,
	// with its identity and the VAT rates programmed in its groups (32h),
	// e.g. to record the rates invoices are checked against.
	OnConnect func(ctx context.Context, info device.PrinterInfo, rates VATRates)
	// ClockTolerance, if positive, makes New compare the printer's clock
	// (3Eh) with Now on every connection and set it (3Dh) when it is off
	// by more than this. Zero leaves the clock alone.
	ClockTolerance time.Duration
	// Now is the host's clock for ClockTolerance; default time.Now.
	Now func() time.Time
	// OnClockSync, if set, is called after the clock check on connect with
	// what was found and done, and the error of 3Dh if setting failed.
	OnClockSync func(ctx context.Context, info device.PrinterInfo, cs ClockSync, err error)
	Log         zerolog.Logger
}

func (o Options) withDefaults() Options {
	if o.Profile.Name == "" {
		o.Profile = X
	}
	if o.Timeout == 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.Resends == 0 {
		o.Resends = 5
	}
	if o.MaxBusy == 0 {
		o.MaxBusy = 2 * time.Minute
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Ledger == nil {
		o.Ledger = &device.MemoryLedger{}
	}
	return o
}

// Conn runs request/answer exchanges on one port, one at a time.
type Conn struct {
	opts Options
	log  zerolog.Logger

	mu  sync.Mutex // serializes exchanges; guards p, seq, buf
	p   device.Port
	seq byte
	buf []byte
}

// NewConn returns a connection on p (a device.Port from device.Open, or a
// go.bug.st/serial port). The first SEQ is random, so that a new
// connection is unlikely to repeat the SEQ of the printer's last frame (the
// printer would replay its old answer instead of executing); Printer also
// spends one status query on it.
func NewConn(p device.Port, opts Options) *Conn {
	opts = opts.withDefaults()
	seq := byte(0x20 + rand.IntN(int(opts.Profile.SeqMax)-0x20+1))
	return &Conn{opts: opts, log: opts.Log, p: p, seq: seq}
}

// Profile returns the connection's width profile.
func (c *Conn) Profile() Profile { return c.opts.Profile }

// Exchange sends cmd with data and returns the printer's answer. It resends
// the same frame (same SEQ, so the printer replays rather than executes
// twice) after a NAK, a corrupt answer or Timeout without a byte, waits
// while the printer sends SYN (up to MaxBusy), and ignores answers to other
// frames. It does not look at the answer's error field or status.
func (c *Conn) Exchange(ctx context.Context, cmd uint16, data []byte) (Msg, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextSeq()
	req := Msg{Seq: c.seq, Cmd: cmd, Data: data}
	frame, err := c.opts.Profile.Encode(req)
	if err != nil {
		return Msg{}, fmt.Errorf("command %02Xh: %w", cmd, err)
	}
	start := time.Now()
	var last error
	for attempt := 0; attempt <= c.opts.Resends; attempt++ {
		if attempt > 0 {
			c.log.Debug().Int(logkey.Attempt, attempt).Uint16("cmd", cmd).AnErr("cause", last).Msg("resending frame")
		}
		c.buf = c.buf[:0]
		c.log.Trace().Hex("frame", frame).Msg("frame out")
		if _, err := c.p.Write(frame); err != nil {
			return Msg{}, fmt.Errorf("command %02Xh: write: %w", cmd, err)
		}
		ans, err := c.readAnswer(ctx, req, start)
		if err == nil {
			return ans, nil
		}
		if errors.Is(err, errSeqClash) {
			// The printer took our SEQ for a repeat of its last frame and
			// replayed that frame's answer without executing ours: use a
			// fresh SEQ. Only the first frame on a new connection can hit this.
			c.nextSeq()
			req.Seq = c.seq
			if frame, err = c.opts.Profile.Encode(req); err != nil {
				return Msg{}, fmt.Errorf("command %02Xh: %w", cmd, err)
			}
			last = errSeqClash
			continue
		}
		if !errors.Is(err, errResend) {
			return Msg{}, fmt.Errorf("command %02Xh: %w", cmd, err)
		}
		last = err
	}
	return Msg{}, fmt.Errorf("command %02Xh after %d sends: %w (%v)", cmd, c.opts.Resends+1, ErrNoAnswer, last)
}

// nextSeq advances the SEQ within the profile's range. Caller must hold mu.
func (c *Conn) nextSeq() {
	c.seq++
	if c.seq < 0x20 || c.seq > c.opts.Profile.SeqMax {
		c.seq = 0x20
	}
}

// errSeqClash: an answer with our SEQ but another command.
var errSeqClash = errors.New("answer replayed for another command")

// errResend marks the failures after which the same frame is sent again.
var errResend = errors.New("resend")

// readAnswer reads until the answer to req arrives. Caller must hold mu.
func (c *Conn) readAnswer(ctx context.Context, req Msg, start time.Time) (Msg, error) {
	deadline := time.Now().Add(c.opts.Timeout)
	var tmp [256]byte
	for {
		if time.Since(start) > c.opts.MaxBusy+c.opts.Timeout {
			return Msg{}, fmt.Errorf("%w (%v)", ErrBusyTooLong, c.opts.MaxBusy)
		}
		// Look at what has arrived so far.
		for len(c.buf) > 0 {
			switch c.buf[0] {
			case nak:
				c.buf = c.buf[1:]
				return Msg{}, fmt.Errorf("%w: NAK", errResend)
			case syn:
				c.buf = c.buf[1:]
				if time.Since(start) > c.opts.MaxBusy {
					return Msg{}, fmt.Errorf("%w (%v)", ErrBusyTooLong, c.opts.MaxBusy)
				}
				deadline = time.Now().Add(c.opts.Timeout)
				continue
			case pre:
			default:
				// Line noise before a frame.
				c.buf = c.buf[1:]
				continue
			}
			m, rest, err := c.opts.Profile.Decode(c.buf)
			switch {
			case errors.Is(err, ErrIncomplete):
			case errors.Is(err, ErrChecksum):
				c.log.Debug().Err(err).Msg("corrupt answer")
				c.buf = c.buf[:0]
				return Msg{}, fmt.Errorf("%w: %v", errResend, err)
			case err != nil:
				c.buf = rest // a PRE inside noise: skip it, resync
				continue
			case m.IsAnswer() && m.Seq == req.Seq && m.Cmd != req.Cmd:
				c.buf = rest
				return Msg{}, errSeqClash
			case !m.IsAnswer() || m.Seq != req.Seq:
				// A late answer to an earlier frame, or our own echo.
				c.log.Debug().Uint8("seq", m.Seq).Uint16("cmd", m.Cmd).Msg("ignoring stray frame")
				c.buf = rest
				continue
			default:
				c.log.Trace().Hex("frame", c.buf[:len(c.buf)-len(rest)]).Msg("frame in")
				c.buf = rest
				return m, nil
			}
			break // incomplete: read more
		}
		n, err := device.Read(ctx, c.p, tmp[:], deadline)
		if errors.Is(err, device.ErrTimeout) {
			return Msg{}, fmt.Errorf("%w: timeout after %v", errResend, c.opts.Timeout)
		}
		if err != nil {
			return Msg{}, fmt.Errorf("read: %w", err)
		}
		c.buf = append(c.buf, tmp[:n]...)
		// Each byte of a frame in progress restarts the wait.
		deadline = time.Now().Add(c.opts.Timeout)
	}
}

// Close closes the port.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.p.Close()
}
