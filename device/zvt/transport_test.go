package zvt_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
)

// chunkLine hands out its chunks one Read at a time, with a timed-out
// read, (0, nil), between two chunks, as a slow network would.
type chunkLine struct {
	chunks [][]byte
	gap    bool
	gapDur time.Duration // how long the line stays quiet between chunks
	out    bytes.Buffer
}

func (l *chunkLine) Read(b []byte) (int, error) {
	if l.gap {
		l.gap = false
		time.Sleep(l.gapDur) // the line is quiet; a serial read would time out
		return 0, nil
	}
	if len(l.chunks) == 0 {
		return 0, nil
	}
	n := copy(b, l.chunks[0])
	l.chunks[0] = l.chunks[0][n:]
	if len(l.chunks[0]) == 0 {
		l.chunks = l.chunks[1:]
		l.gap = true
	}
	return n, nil
}

func (l *chunkLine) Write(b []byte) (int, error)        { return l.out.Write(b) }
func (l *chunkLine) SetReadTimeout(time.Duration) error { return nil }

// textBlock1648 builds a Print Text-Block APDU of exactly 1648 bytes, the
// size of the receipt a Verifone VX820 split as 1024 + 624 (Portalum#8).
func textBlock1648(t *testing.T) zvt.APDU {
	t.Helper()
	var lines []string
	for i := 0; i < 40; i++ {
		lines = append(lines, strings.Repeat(string(rune('A'+i%26)), 38))
	}
	a := zvt.PrintTextBlock(2, lines)
	// Pad the last line until the APDU is exactly 1648 bytes.
	for len(a.Encode()) < 1648 {
		lines[len(lines)-1] += "."
		a = zvt.PrintTextBlock(2, lines)
	}
	if n := len(a.Encode()); n != 1648 {
		t.Fatalf("text block is %d bytes", n)
	}
	return a
}

func TestTCPReassemblesSplitTextBlock(t *testing.T) {
	a := textBlock1648(t)
	enc := a.Encode()
	t.Run("ChunkedReads", func(t *testing.T) {
		l := &chunkLine{chunks: [][]byte{enc[:1024], enc[1024:1030], enc[1030:]}}
		got, err := zvt.NewTCP(l, nil).Recv(context.Background(), time.Now().Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Encode(), enc) {
			t.Fatalf("reassembled %d bytes, want %d", len(got.Encode()), len(enc))
		}
	})
	t.Run("Loopback", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		sent := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				sent <- err
				return
			}
			defer c.Close()
			// Two writes with the header split off, then the tail.
			for _, part := range [][]byte{enc[:2], enc[2:1024], enc[1024:]} {
				if _, err := c.Write(part); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
		p, err := device.Open(context.Background(), "tcp://"+ln.Addr().String(), device.PortOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		got, err := zvt.NewTCP(p, nil).Recv(context.Background(), time.Now().Add(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Encode(), enc) {
			t.Fatalf("reassembled %d bytes, want %d", len(got.Encode()), len(enc))
		}
	})
}

// pipeLine is one end of an in-memory serial line: writes go to the peer's
// inbox; reads honour the read timeout with (0, nil).
type pipeLine struct {
	in      chan []byte
	peer    *pipeLine
	buf     []byte
	timeout time.Duration
	drop    func(b []byte) bool // optional: swallow a write
}

func pipePair() (*pipeLine, *pipeLine) {
	a := &pipeLine{in: make(chan []byte, 64), timeout: -1}
	b := &pipeLine{in: make(chan []byte, 64), timeout: -1, peer: a}
	a.peer = b
	return a, b
}

func (l *pipeLine) Write(b []byte) (int, error) {
	if l.drop != nil && l.drop(b) {
		return len(b), nil
	}
	l.peer.in <- append([]byte{}, b...)
	return len(b), nil
}

func (l *pipeLine) Read(b []byte) (int, error) {
	if len(l.buf) == 0 {
		var to <-chan time.Time
		if l.timeout >= 0 {
			to = time.After(l.timeout)
		}
		select {
		case l.buf = <-l.in:
		case <-to:
			return 0, nil
		}
	}
	n := copy(b, l.buf)
	l.buf = l.buf[n:]
	return n, nil
}

func (l *pipeLine) SetReadTimeout(d time.Duration) error { l.timeout = d; return nil }

func TestSerialRepeatsOnNAKAndGivesUp(t *testing.T) {
	ecr, pt := pipePair()
	opts := zvt.SerialOptions{T2: 200 * time.Millisecond}
	naks := 0
	ptOpts := zvt.SerialOptions{NAKFault: func() bool { naks++; return naks <= 2 }}
	done := make(chan zvt.APDU, 1)
	go func() {
		a, err := zvt.NewSerial(pt, ptOpts).Recv(context.Background(), time.Now().Add(5*time.Second))
		if err != nil {
			t.Error(err)
		}
		done <- a
	}()
	if err := zvt.NewSerial(ecr, opts).Send(context.Background(), zvt.Authorization(1234, 978)); err != nil {
		t.Fatalf("send after two NAKs: %v", err)
	}
	if a := <-done; a.Command() != zvt.CmdAuthorization {
		t.Fatalf("received %s", a)
	}

	// Nobody answers: three tries, each after T2, then ErrNoAck.
	lonely, _ := pipePair()
	start := time.Now()
	err := zvt.NewSerial(lonely, zvt.SerialOptions{T2: 50 * time.Millisecond}).Send(context.Background(), zvt.AbortCmd())
	if !errors.Is(err, zvt.ErrNoAck) {
		t.Fatalf("err=%v, want ErrNoAck", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("gave up after %v, want 3×T2", d)
	}
	if got := len(lonely.peer.in); got != 3 {
		t.Fatalf("%d tries, want 3", got)
	}
}

func TestSerialNAKsGapLongerThanT1(t *testing.T) {
	frame := zvt.EncodeFrame(zvt.Ack().Encode())
	// The first copy stops half-way (the sender stalls past T1), the
	// repeat arrives whole.
	l := &chunkLine{chunks: [][]byte{frame[:4], frame}, gapDur: 30 * time.Millisecond}
	s := zvt.NewSerial(l, zvt.SerialOptions{T1: 10 * time.Millisecond})
	a, err := s.Recv(context.Background(), time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !a.IsAck() {
		t.Fatalf("got %s", a)
	}
	if got, want := l.out.Bytes(), []byte{zvt.NAK, zvt.ACK}; !bytes.Equal(got, want) {
		t.Fatalf("answers % X, want % X", got, want)
	}
}
