package zvt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
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

// TLSConfig builds the TLS settings of a tls://host:port terminal from its
// configuration. rootsPEM, if not empty, holds the CA certificates to
// trust instead of the system roots (terminal fleets usually have their
// own CA). pin, if not nil, is the SHA-256 of the terminal's certificate
// (DER): the handshake then also requires that exact certificate. With a
// pin and no roots the chain is not verified, only the pin, which is how
// a terminal with a self-signed certificate is trusted. Errors:
// ErrBadValue for PEM without a certificate or a pin that is not 32 bytes.
func TLSConfig(rootsPEM []byte, pin []byte) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(rootsPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(rootsPEM) {
			return nil, fmt.Errorf("zvt: %w: no PEM certificate in the roots", ErrBadValue)
		}
		cfg.RootCAs = pool
	}
	if pin == nil {
		return cfg, nil
	}
	if len(pin) != sha256.Size {
		return nil, fmt.Errorf("zvt: %w: a SHA-256 fingerprint is 32 bytes, not %d", ErrBadValue, len(pin))
	}
	want := bytes.Clone(pin)
	// With a pin and no roots Go's own chain check is off; with roots it
	// runs first. VerifyConnection runs on every handshake (resumed ones
	// too) and checks the pin either way.
	cfg.InsecureSkipVerify = len(rootsPEM) == 0
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("zvt: the terminal sent no certificate")
		}
		got := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare(got[:], want) != 1 {
			return fmt.Errorf("zvt: the terminal's certificate has SHA-256 %X, not the pinned one", got[:])
		}
		return nil
	}
	return cfg, nil
}

// ParseFingerprint reads a SHA-256 certificate fingerprint as hex, with or
// without colons or spaces between the bytes and an optional "sha256:"
// prefix, in either case (the forms openssl x509 -fingerprint and browsers
// print). Errors: ErrBadValue.
func ParseFingerprint(s string) ([]byte, error) {
	t := strings.TrimSpace(s)
	if len(t) > 7 && strings.EqualFold(t[:7], "sha256:") {
		t = t[7:]
	}
	t = strings.NewReplacer(":", "", " ", "").Replace(t)
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("zvt: %w: want the certificate's SHA-256 as 64 hex digits, colons allowed", ErrBadValue)
	}
	return b, nil
}
