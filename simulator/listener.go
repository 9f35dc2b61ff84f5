package simulator

import (
	"context"
	"net"

	"github.com/rs/zerolog"
)

// ServeListener serves h on connections from ln, as ServeTCP does, until
// Close or ctx ends; it takes ln over. Pass a tls.NewListener to serve TLS.
func ServeListener(ctx context.Context, ln net.Listener, h Handler, log zerolog.Logger) *TCPServer {
	ctx, cancel := context.WithCancel(ctx)
	s := &TCPServer{ln: ln, log: log, cancel: cancel}
	context.AfterFunc(ctx, func() { ln.Close() })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.accept(ctx, h)
	}()
	return s
}
