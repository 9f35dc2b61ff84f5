package simulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// ErrHangup is returned by a Handler to drop the line: the TCP connection
// is closed, or the pty master is closed (the driver sees a hang-up, as when
// a USB cable is pulled) and a fresh pty is put behind the same link path.
var ErrHangup = errors.New("simulator hangs up")

// Conn is one session's line: the pty master or an accepted TCP connection.
// Reads are unblocked by SetReadDeadline, and with an error when the server
// closes the line.
type Conn interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
}

// Handler serves one session until the line closes, ctx ends or it wants
// to hang up (ErrHangup). On a pty the server calls it again after it
// returns; on TCP each accepted connection gets one call.
type Handler func(ctx context.Context, c Conn) error

// TCPServer serves a Handler on a TCP listener.
type TCPServer struct {
	ln     net.Listener
	log    zerolog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ServeTCP listens on addr (e.g. "127.0.0.1:0") and serves each accepted
// connection with h in its own goroutine until Close or ctx ends. Handlers
// that share state must lock it themselves.
func ServeTCP(ctx context.Context, addr string, h Handler, log zerolog.Logger) (*TCPServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &TCPServer{ln: ln, log: log, cancel: cancel}
	context.AfterFunc(ctx, func() { ln.Close() })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.accept(ctx, h)
	}()
	return s, nil
}

func (s *TCPServer) accept(ctx context.Context, h Handler) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error().Err(err).Msg("simulator accept failed")
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			if err := h(ctx, c); err != nil && !errors.Is(err, ErrHangup) && ctx.Err() == nil {
				s.log.Debug().Err(err).Msg("simulator session ended")
			}
		}()
	}
}

// Addr returns the address the server listens on, as host:port.
func (s *TCPServer) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for the handlers.
func (s *TCPServer) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}
