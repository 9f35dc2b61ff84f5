package me

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The client loads the system roots at its first exchange, not when it
// is built (an idle daemon kept 2.6 MiB more for them), once, and
// still trusts the CA file beside them; a CA file without a certificate
// is refused when the client is built.
func TestClientLoadsRootsAtFirstExchange(t *testing.T) {
	var loads atomic.Int32
	orig := systemRoots
	systemRoots = func() (*x509.CertPool, error) {
		loads.Add(1)
		return orig()
	}
	t.Cleanup(func() { systemRoots = orig })

	var got atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	loopback := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
			return nil, errors.New("test dialer: loopback only")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}

	c, err := NewClient(ClientOptions{URL: srv.URL, CAFile: caFile, Timeout: 5 * time.Second, DialContext: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := loads.Load(); n != 0 {
		t.Fatalf("NewClient loaded the system roots %d times, want 0", n)
	}
	for i := range 2 {
		_, _, err := c.Post(context.Background(), "RegisterInvoice", []byte("<x/>"), "RegisterInvoiceResponse")
		var ee *ExchangeError
		if !errors.As(err, &ee) || ee.HTTPStatus != http.StatusServiceUnavailable {
			t.Fatalf("post %d: %v, want the server's 503 over verified TLS", i, err)
		}
	}
	if n := got.Load(); n != 2 {
		t.Fatalf("server got %d requests, want 2", n)
	}
	if n := loads.Load(); n != 1 {
		t.Fatalf("system roots loaded %d times, want 1", n)
	}

	// Without the CA file the server's certificate is not trusted.
	c2, err := NewClient(ClientOptions{URL: srv.URL, Timeout: 5 * time.Second, DialContext: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, _, err = c2.Post(context.Background(), "RegisterInvoice", []byte("<x/>"), "RegisterInvoiceResponse")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) || got.Load() != 2 {
		t.Fatalf("post without the CA file: %v (server got %d requests), want an unknown authority", err, got.Load())
	}

	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewClient(ClientOptions{URL: srv.URL, CAFile: bad}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("NewClient with a CA file without a certificate: %v", err)
	}
}
