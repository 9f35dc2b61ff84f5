package zvt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/posgate/posgate/device"
)

// openPort opens spec for the link: tls://host:port is ZVT over TLS, as
// terminals that offer it do on a vendor port (research §5); everything
// else goes to device.Open.
func (c *Client) openPort(ctx context.Context, spec string, opts device.PortOptions) (device.Port, error) {
	hostport, ok := strings.CutPrefix(spec, "tls://")
	if !ok {
		return device.Open(ctx, spec, opts)
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w: want tls://host:port", spec, device.ErrBadSpec)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.opts.TLS != nil {
		cfg = c.opts.TLS.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	timeout := opts.DialTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", spec, err)
	}
	return &tlsPort{c: conn, timeout: -1}, nil
}

// tlsPort gives a TLS connection the serial read-timeout semantics the
// transports expect: a Read that times out returns (0, nil). A read
// timeout does not break a tls.Conn (its error is temporary); a write
// timeout would, and writes have none.
type tlsPort struct {
	c       net.Conn
	timeout time.Duration
}

func (t *tlsPort) Read(b []byte) (int, error) {
	var dl time.Time
	if t.timeout >= 0 {
		dl = time.Now().Add(t.timeout)
	}
	if err := t.c.SetReadDeadline(dl); err != nil {
		return 0, err
	}
	n, err := t.c.Read(b)
	var ne net.Error
	if n == 0 && errors.As(err, &ne) && ne.Timeout() {
		return 0, nil
	}
	return n, err
}

func (t *tlsPort) Write(b []byte) (int, error)          { return t.c.Write(b) }
func (t *tlsPort) Close() error                         { return t.c.Close() }
func (t *tlsPort) SetReadTimeout(d time.Duration) error { t.timeout = d; return nil }
