//go:build linux || darwin

package simulator_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/simulator"
	"github.com/rs/zerolog"
)

// echo answers every chunk with the same bytes; "HUP" asks to hang up.
func echo(ctx context.Context, c simulator.Conn) error {
	buf := make([]byte, 256)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if bytes.Equal(buf[:n], []byte("HUP")) {
			return simulator.ErrHangup
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return err
		}
	}
}

func readN(t *testing.T, p device.Port, n int) []byte {
	t.Helper()
	got := make([]byte, 0, n)
	buf := make([]byte, n)
	deadline := time.Now().Add(2 * time.Second)
	for len(got) < n {
		k, err := device.Read(context.Background(), p, buf[:n-len(got)], deadline)
		if err != nil {
			t.Fatalf("read after %x: %v", got, err)
		}
		got = append(got, buf[:k]...)
	}
	return got
}

func TestPTYRawBothWays(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttySIM")
	srv, err := simulator.ServePTY(context.Background(), echo, simulator.PTYOptions{Link: link, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p, err := device.Open(context.Background(), srv.Path(), device.PortOptions{StopBits: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Every byte a cooked tty would eat or rewrite.
	frame := []byte{0x10, 0x02, 0x04, 0x0F, 0x03, 0x27, 0x15, 0x0A, 0x0D, 0x11, 0x13, 0x7F, 0x1A, 0x04, 0x10, 0x03, 0xAA, 0xBB}
	if _, err := p.Write(frame); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, p, len(frame)); !bytes.Equal(got, frame) {
		t.Fatalf("echo=% X, want % X", got, frame)
	}
}

func TestPTYHangupRelinks(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttySIM")
	srv, err := simulator.ServePTY(context.Background(), echo, simulator.PTYOptions{Link: link, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p, err := device.Open(context.Background(), link, device.PortOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Write([]byte("HUP")); err != nil {
		t.Fatal(err)
	}
	_, err = device.Read(context.Background(), p, make([]byte, 8), time.Now().Add(2*time.Second))
	if err == nil || errors.Is(err, device.ErrTimeout) {
		t.Fatalf("read after hang-up: err=%v, want a line error", err)
	}
	p.Close()
	// The new pty may reuse the old number, so poll by opening the link.
	var p2 device.Port
	deadline := time.Now().Add(2 * time.Second)
	for {
		p2, err = device.Open(context.Background(), link, device.PortOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reopen after hang-up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer p2.Close()
	p2.Write([]byte("hi"))
	if got := readN(t, p2, 2); string(got) != "hi" {
		t.Fatalf("echo=%q", got)
	}
}

func TestTCPEcho(t *testing.T) {
	srv, err := simulator.ServeTCP(context.Background(), "127.0.0.1:0", echo, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p, err := device.Open(context.Background(), "tcp://"+srv.Addr(), device.PortOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Write([]byte{0x10, 0x03})
	if got := readN(t, p, 2); !bytes.Equal(got, []byte{0x10, 0x03}) {
		t.Fatalf("echo=% X", got)
	}
	// A timed-out read is ErrTimeout, not (0, nil).
	_, err = device.Read(context.Background(), p, make([]byte, 1), time.Now().Add(50*time.Millisecond))
	if !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("err=%v, want ErrTimeout", err)
	}
	_ = io.EOF
}
