package me_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/iic"
	"github.com/posgate/posgate/fiscal/me"
	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/simulator/taxservice"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/store/storetest"
)

// fakeClock is a settable clock shared by posgate and the simulator.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rig is a store, a certificate, the invoice issuer and the
// registration worker, with the simulator as the tax service.
type rig struct {
	t       testing.TB
	db      *store.DB
	sim     *taxservice.Server
	clk     *fakeClock
	certs   *fiscal.Certificates
	inv     *fiscal.Invoices
	reg     *fiscal.Registrations
	regOpts fiscal.RegistrationsOptions
	certID  string
	offline atomic.Bool // the link is down: every dial fails
	mkPath  string
	caFile  string
	client  *me.Client
	dials   atomic.Int64
}

type rigOptions struct {
	sim     taxservice.Options
	timeout time.Duration
	reg     func(*fiscal.RegistrationsOptions)
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	r := &rig{t: t, db: storetest.Open(t), clk: &fakeClock{t: time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)}}
	o.sim.Now = r.clk.Now
	sim, err := taxservice.Start(o.sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	r.sim = sim
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	r.caFile = caFile
	if err := os.WriteFile(caFile, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	client, err := me.NewClient(me.ClientOptions{URL: sim.URL(), CAFile: caFile, Timeout: o.timeout,
		Trusted: []*x509.Certificate{sim.SigningCertificate()},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// Loopback only, and nothing at all while "offline".
			host, _, _ := net.SplitHostPort(addr)
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return nil, errors.New("test dialer: refusing non-loopback " + addr)
			}
			r.dials.Add(1)
			if r.offline.Load() {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("network is unreachable")}
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	r.client = client
	profile, err := me.New(me.Options{Issuer: issuer, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	r.mkPath = filepath.Join(t.TempDir(), "master.key")
	mk, err := masterkey.LoadOrCreate(r.mkPath)
	if err != nil {
		t.Fatal(err)
	}
	r.certs = fiscal.NewCertificates(r.db, fiscal.CertificatesOptions{Master: mk, Now: r.clk.Now})
	key := exampleKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "posgate test taxpayer", SerialNumber: "12345678"},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	cert, err := r.certs.Import(context.Background(), fiscal.ImportParams{
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		PrivateKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})), TIN: "12345678"})
	if err != nil {
		t.Fatal(err)
	}
	r.certID = cert.ID
	r.regOpts = fiscal.RegistrationsOptions{Registrar: profile, Certificates: r.certs, Now: r.clk.Now,
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	if o.reg != nil {
		o.reg(&r.regOpts)
	}
	r.reg = fiscal.NewRegistrations(r.db, r.regOpts)
	scheme, err := iic.New(iic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.inv = fiscal.NewInvoices(r.db, fiscal.InvoicesOptions{Scheme: scheme, Certificates: r.certs, TIN: issuer.TIN,
		BusinessUnit: issuer.BusinessUnit, Device: issuer.TCR, Software: issuer.Software, Now: r.clk.Now,
		RegisterTx: func(ctx context.Context, tx *sql.Tx, inv fiscal.Invoice) error {
			return r.reg.EnqueueInvoiceTx(ctx, tx, inv)
		},
		Registered: func() { r.reg.Wake() }})
	return r
}

// sale issues a cash sale of amount minor units.
func (r *rig) sale(amount int64) fiscal.Invoice {
	r.t.Helper()
	inv, err := r.inv.Create(context.Background(), fiscal.NewInvoice{Type: fiscal.TypeSale,
		Items:    []fiscal.NewItem{{Name: "Espresso", Quantity: "1", UnitPrice: amount, VATRate: "21"}},
		Payments: []fiscal.NewPayment{{Type: fiscal.PayCash, Amount: amount}}},
		fiscal.Caller{KeyID: "key_test", CertificateID: r.certID})
	if err != nil {
		r.t.Fatal(err)
	}
	return inv
}

// runOnce runs the worker once and fails the test on a store error.
func (r *rig) runOnce() bool {
	r.t.Helper()
	did, err := r.reg.RunOnce(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return did
}

// drain runs the worker until nothing is due (at most n times).
func (r *rig) drain(n int) int {
	r.t.Helper()
	for i := range n {
		if !r.runOnce() {
			return i
		}
	}
	r.t.Fatalf("still busy after %d runs", n)
	return n
}

func (r *rig) status(id string) fiscal.FiscalizationStatus {
	r.t.Helper()
	inv, err := r.inv.Get(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	if inv.Fiscalization == nil {
		r.t.Fatalf("invoice %s has no fiscalization", id)
	}
	return *inv.Fiscalization
}

type event struct {
	Type string
	Data map[string]any
}

// events returns the outbox's events of the given types, oldest first.
func (r *rig) events(types ...string) []event {
	r.t.Helper()
	rows, err := r.db.Read.Query("SELECT type, data FROM outbox_events ORDER BY seq")
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		var data []byte
		if err := rows.Scan(&e.Type, &data); err != nil {
			r.t.Fatal(err)
		}
		for _, t := range types {
			if t == e.Type {
				if err := json.Unmarshal(data, &e.Data); err != nil {
					r.t.Fatal(err)
				}
				out = append(out, e)
			}
		}
	}
	return out
}

func mustScheme(t testing.TB) *iic.Scheme {
	t.Helper()
	s, err := iic.New(iic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goOffline cuts the link: no dial succeeds and no kept-alive
// connection is left to reuse.
func (r *rig) goOffline() {
	r.offline.Store(true)
	r.client.Close()
}
