package zvt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/posgate/posgate/device"
)

// Line is what a transport needs from a port: device.Port and the
// simulator's adapted pty/TCP connection both fit.
type Line interface {
	io.Writer
	device.TimeoutReader
}

// Transport moves APDUs over a line. Send returns once the peer has taken
// the message (serial: it answered ACK); Recv returns the next APDU, or
// device.ErrTimeout if none started before deadline.
type Transport interface {
	Send(ctx context.Context, a APDU) error
	Recv(ctx context.Context, deadline time.Time) (APDU, error)
}

// TraceFunc sees every APDU a transport sends or receives.
type TraceFunc func(dir device.Direction, a APDU)

// Default serial timings (PA00P016 §3).
const (
	DefaultT1    = 200 * time.Millisecond // gap between bytes of a frame
	DefaultT2    = 5 * time.Second        // wait for ACK/NAK
	DefaultTries = 3                      // one send plus two repeats
)

// SerialOptions tunes a Serial transport; zero values take the defaults.
type SerialOptions struct {
	T1, T2 time.Duration
	Tries  int
	Trace  TraceFunc
	// NAKFault and GarbleFault, when set, are asked before each frame is
	// answered or sent; returning true NAKs that good frame or garbles the
	// outgoing one. Simulators use them to inject line faults.
	NAKFault, GarbleFault func() bool
}

// Serial runs the serial transport: DLE STX framing with CRC, a bare ACK
// (06) or NAK (15) for every frame, repeats on NAK or T2, and NAK on a bad
// CRC, a bad DLE sequence or a gap longer than T1 inside a frame. It is not
// safe for concurrent use: one goroutine owns the line.
type Serial struct {
	l       Line
	opts    SerialOptions
	buf     []byte // bytes read and not yet consumed
	pending []APDU // frames that arrived (and were ACKed) while we waited for an ACK
}

// NewSerial returns a serial transport on l.
func NewSerial(l Line, opts SerialOptions) *Serial {
	if opts.T1 == 0 {
		opts.T1 = DefaultT1
	}
	if opts.T2 == 0 {
		opts.T2 = DefaultT2
	}
	if opts.Tries == 0 {
		opts.Tries = DefaultTries
	}
	return &Serial{l: l, opts: opts}
}

// Send writes a as a frame and waits for the ACK, repeating on NAK or T2.
// It returns ErrNoAck after the last try.
func (s *Serial) Send(ctx context.Context, a APDU) error {
	frame := EncodeFrame(a.Encode())
	for try := 1; try <= s.opts.Tries; try++ {
		out := frame
		if s.opts.GarbleFault != nil && s.opts.GarbleFault() {
			out = garble(frame)
		}
		if _, err := s.l.Write(out); err != nil {
			return fmt.Errorf("write %s: %w", CommandName(a), err)
		}
		if s.opts.Trace != nil {
			s.opts.Trace(device.Sent, a)
		}
		got, err := s.awaitAck(ctx, time.Now().Add(s.opts.T2))
		switch {
		case err == nil && got == ACK:
			return nil
		case err == nil, errors.Is(err, device.ErrTimeout):
			continue // NAK or T2: repeat
		default:
			return fmt.Errorf("wait for ack of %s: %w", CommandName(a), err)
		}
	}
	return fmt.Errorf("send %s: %w after %d tries", CommandName(a), ErrNoAck, s.opts.Tries)
}

// garble inserts bytes after the header so the receiver's CRC check fails.
func garble(frame []byte) []byte {
	out := append([]byte{}, frame[:3]...)
	out = append(out, 0xA5, 0x5A, 0xFF)
	return append(out, frame[3:]...)
}

// awaitAck returns the next ACK or NAK byte. A frame that arrives first is
// the peer talking at the same time (an ECR Abort crossing a terminal
// message): it is acknowledged at once, so neither side waits for the
// other's ACK until T2, and kept for Recv. Other bytes are line noise.
func (s *Serial) awaitAck(ctx context.Context, deadline time.Time) (byte, error) {
	for {
		for len(s.buf) > 0 {
			switch b := s.buf[0]; {
			case b == ACK || b == NAK:
				s.buf = s.buf[1:]
				return b, nil
			case b == DLE && len(s.buf) == 1:
				goto more
			case b == DLE && s.buf[1] == STX:
				raw, rest, err := DecodeFrame(s.buf)
				if errors.Is(err, ErrIncomplete) {
					goto more
				}
				s.buf = rest
				reply := []byte{ACK}
				a, _, aerr := DecodeAPDU(raw)
				if err != nil || aerr != nil {
					reply[0] = NAK
				} else {
					s.pending = append(s.pending, a)
					if s.opts.Trace != nil {
						s.opts.Trace(device.Received, a)
					}
				}
				if _, err := s.l.Write(reply); err != nil {
					return 0, fmt.Errorf("write ack: %w", err)
				}
			default:
				s.buf = s.buf[1:]
			}
		}
	more:
		if err := s.fill(ctx, deadline); err != nil {
			return 0, err
		}
	}
}

// fill reads at least one more byte into s.buf.
func (s *Serial) fill(ctx context.Context, deadline time.Time) error {
	var tmp [512]byte
	n, err := device.Read(ctx, s.l, tmp[:], deadline)
	s.buf = append(s.buf, tmp[:n]...)
	return err
}

// Recv returns the next good frame's APDU after answering it with ACK. Bad
// frames are answered with NAK and waited for again, up to Tries times.
func (s *Serial) Recv(ctx context.Context, deadline time.Time) (APDU, error) {
	if len(s.pending) > 0 {
		a := s.pending[0]
		s.pending = s.pending[1:]
		return a, nil
	}
	naks := 0
	nak := func(why error) error {
		naks++
		if _, err := s.l.Write([]byte{NAK}); err != nil {
			return fmt.Errorf("write nak: %w", err)
		}
		if naks >= s.opts.Tries {
			return fmt.Errorf("receive: %w: %w", ErrTooManyNAKs, why)
		}
		return nil
	}
	for {
		s.skipToFrame()
		raw, rest, err := DecodeFrame(s.buf)
		switch {
		case err == nil:
			s.buf = rest
			if s.opts.NAKFault != nil && s.opts.NAKFault() {
				if err := nak(errors.New("nak fault")); err != nil {
					return APDU{}, err
				}
				continue
			}
			if _, err := s.l.Write([]byte{ACK}); err != nil {
				return APDU{}, fmt.Errorf("write ack: %w", err)
			}
			a, _, err := DecodeAPDU(raw)
			if err != nil {
				return APDU{}, fmt.Errorf("receive: apdu % X: %w", raw, err)
			}
			if s.opts.Trace != nil {
				s.opts.Trace(device.Received, a)
			}
			return a, nil
		case errors.Is(err, ErrIncomplete):
			started := len(s.buf) > 0
			d := deadline
			if started {
				d = time.Now().Add(s.opts.T1) // inside a frame T1 rules
			}
			err := s.fill(ctx, d)
			if errors.Is(err, device.ErrTimeout) && started {
				s.buf = s.buf[:0]
				if err := nak(fmt.Errorf("t1 expired")); err != nil {
					return APDU{}, err
				}
				continue
			}
			if err != nil {
				return APDU{}, err
			}
		default:
			s.buf = rest
			if err := nak(err); err != nil {
				return APDU{}, err
			}
		}
	}
}

// skipToFrame drops bytes before the next DLE STX (stray ACKs, noise).
func (s *Serial) skipToFrame() {
	for i := 0; i < len(s.buf); i++ {
		if s.buf[i] != DLE {
			continue
		}
		if i+1 == len(s.buf) || s.buf[i+1] == STX {
			s.buf = s.buf[i:]
			return
		}
	}
	s.buf = s.buf[:0]
}

// TCP runs the TCP transport: bare APDUs, no framing, no ACK; an APDU is
// reassembled from as many reads as the network splits it into.
type TCP struct {
	l     Line
	trace TraceFunc
	buf   []byte
}

// NewTCP returns a TCP transport on l.
func NewTCP(l Line, trace TraceFunc) *TCP { return &TCP{l: l, trace: trace} }

// Send writes a.
func (t *TCP) Send(ctx context.Context, a APDU) error {
	if _, err := t.l.Write(a.Encode()); err != nil {
		return fmt.Errorf("write %s: %w", CommandName(a), err)
	}
	if t.trace != nil {
		t.trace(device.Sent, a)
	}
	return nil
}

// Recv reads one APDU, reading until its declared length is all there.
func (t *TCP) Recv(ctx context.Context, deadline time.Time) (APDU, error) {
	var tmp [4096]byte
	for {
		if n, err := apduLen(t.buf); err == nil && len(t.buf) >= n {
			a, rest, _ := DecodeAPDU(t.buf)
			t.buf = append(t.buf[:0], rest...)
			if t.trace != nil {
				t.trace(device.Received, a)
			}
			return a, nil
		}
		n, err := device.Read(ctx, t.l, tmp[:], deadline)
		t.buf = append(t.buf, tmp[:n]...)
		if err != nil {
			return APDU{}, err
		}
	}
}
