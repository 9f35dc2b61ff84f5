package zvt_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/rs/zerolog"
)

// selfSigned makes a certificate for 127.0.0.1, valid for an hour.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sim terminal"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestTLS runs a sale over tls:// against the simulator serving TLS, and
// refuses a terminal whose certificate the client does not trust.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	log := zerolog.New(zerolog.NewTestWriter(t))
	sim := terminal.New(terminal.Options{Step: 5 * time.Millisecond, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := simulator.ServeListener(ctx, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}), sim.ServeTCP, log)
	defer srv.Close()
	spec := "tls://" + srv.Addr()

	run := func(cfg *tls.Config) (*zvt.Client, func()) {
		c := zvt.New(zvt.Options{ID: "t1", Spec: spec, TLS: cfg, StatusEvery: -1, Log: log,
			BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { c.Run(cctx); close(done) }()
		return c, func() { ccancel(); <-done }
	}

	c, stop := run(&tls.Config{RootCAs: pool})
	defer stop()
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	for {
		err := c.Register(rctx)
		if err == nil {
			break
		}
		if !errors.Is(err, device.ErrOffline) || rctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := c.Authorize(rctx, device.Charge{Amount: 4242}, nil)
	if err != nil || res.Outcome != device.Approved || res.Info.Amount != 4242 {
		t.Fatalf("sale over TLS: %+v, %v", res, err)
	}

	// Without the terminal's root the link never comes up.
	c2, stop2 := run(nil)
	defer stop2()
	time.Sleep(200 * time.Millisecond)
	if online, _ := c2.Link().State(); online {
		t.Fatal("untrusted terminal: online")
	}
	if err := c2.Register(rctx); !errors.Is(err, device.ErrOffline) {
		t.Fatalf("untrusted terminal: Register=%v, want ErrOffline", err)
	}
	if n := unreversedSales(sim.Journal()); n != 1 {
		t.Fatalf("charges=%d", n)
	}
}
