package doctor_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/posgate/posgate/doctor"
	"github.com/posgate/posgate/webhook"
)

func run1(t *testing.T, c doctor.Check) doctor.Result {
	t.Helper()
	return doctor.Run(context.Background(), []doctor.Check{c})[0]
}

func expect(t *testing.T, r doctor.Result, want doctor.Status, detail string) {
	t.Helper()
	if r.Status != want || !strings.Contains(r.Detail, detail) {
		t.Errorf("%s: %s %q, want %s containing %q", r.Check, r.Status, r.Detail, want, detail)
	}
}

func newStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "posgate.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t(x); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStore(t *testing.T) {
	path := newStore(t)
	expect(t, run1(t, doctor.Store(path)), doctor.OK, "integrity ok")

	expect(t, run1(t, doctor.Store(filepath.Join(t.TempDir(), "none.db"))), doctor.Fail, "no such file")

	bad := filepath.Join(t.TempDir(), "posgate.db")
	if err := os.WriteFile(bad, bytes.Repeat([]byte("not a database "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, run1(t, doctor.Store(bad)), doctor.Fail, "integrity check")
}

func TestMasterKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "master.key")
	expect(t, run1(t, doctor.MasterKey(path)), doctor.Fail, "no such file")
	if err := os.WriteFile(path, bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, run1(t, doctor.MasterKey(path)), doctor.OK, "present")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	expect(t, run1(t, doctor.MasterKey(path)), doctor.Warn, "want 0600")
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, run1(t, doctor.MasterKey(path)), doctor.Fail, "")
	if err := os.Chmod(path, 0o000); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 { // root reads anything
		expect(t, run1(t, doctor.MasterKey(path)), doctor.Fail, "permission denied")
	}
}

func TestCertificateAndClock(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	expect(t, run1(t, doctor.Certificate("cert_1", "shop", now.AddDate(1, 0, 0), clock)), doctor.OK, "expires 2027-06-01")
	expect(t, run1(t, doctor.Certificate("cert_1", "shop", now.AddDate(0, 0, 10), clock)), doctor.Warn, "in 10 days")
	expect(t, run1(t, doctor.Certificate("cert_1", "shop", now.Add(-time.Hour), clock)), doctor.Fail, "expired")

	floor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if r := run1(t, doctor.Clock(clock, floor)); r.Status == doctor.Fail {
		t.Errorf("clock: %+v", r)
	}
	expect(t, run1(t, doctor.Clock(func() time.Time { return time.Unix(0, 0) }, floor)), doctor.Fail, "1970")
}

func TestTaxService(t *testing.T) {
	var offset time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			t.Errorf("method %s, want HEAD", r.Method)
		}
		w.Header().Set("Date", time.Now().Add(offset).UTC().Format(http.TimeFormat))
	}))
	defer srv.Close()
	c := doctor.TaxService(srv.Client(), srv.URL, time.Now)
	expect(t, run1(t, c), doctor.OK, "answered 200")
	offset = 10 * time.Minute
	expect(t, run1(t, c), doctor.Fail, "more than 2m0s") // the Date header has whole seconds
	srv.Close()
	expect(t, run1(t, c), doctor.Fail, "unreachable")
}

// guard records the dialer's decisions and refuses to leave loopback.
type guard struct{ addrs []string }

func (g *guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	g.addrs = append(g.addrs, addr)
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, errors.New("test guard: only loopback")
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func TestWebhook(t *testing.T) {
	hits := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ }))
	defer srv.Close()
	pool := &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	g := &guard{}
	expect(t, run1(t, doctor.Webhook("we_1", srv.URL+"/hook", g, pool)), doctor.OK, "TCP and TLS")
	if hits != 0 {
		t.Errorf("doctor sent %d requests; it must spend no delivery", hits)
	}
	// Untrusted certificate: TLS fails.
	expect(t, run1(t, doctor.Webhook("we_1", srv.URL, g, nil)), doctor.Fail, "TLS")
	addr := srv.Listener.Addr().String()
	srv.Close()
	expect(t, run1(t, doctor.Webhook("we_1", "https://"+addr, g, pool)), doctor.Fail, "refused")

	// The real SSRF guard refuses loopback when allow_private is off,
	// before connecting.
	real := webhook.NewSender(webhook.SenderOptions{}).Dialer()
	expect(t, run1(t, doctor.Webhook("we_2", "https://127.0.0.1:9/x", real, nil)), doctor.Fail, "allow_private")
}

func TestDaemonDevicesAndJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"status":"ok","devices":{"p1":{"state":"online"},"t1":{"state":"offline","last_error":"open /dev/ttyUSB0: no such file"}}}`))
	}))
	defer srv.Close()
	checks, ok := doctor.DaemonDevices(context.Background(), srv.Client(), srv.URL)
	if !ok || len(checks) != 2 {
		t.Fatalf("%v %d", ok, len(checks))
	}
	rs := doctor.Run(context.Background(), checks)
	expect(t, rs[0], doctor.OK, "online")
	expect(t, rs[1], doctor.Fail, "no such file")
	if !doctor.Failed(rs) {
		t.Error("Failed = false")
	}
	var buf bytes.Buffer
	if err := doctor.Print(&buf, rs, true); err != nil {
		t.Fatal(err)
	}
	var back []doctor.Result
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back) != 2 || back[1].Status != "fail" {
		t.Fatalf("json: %v %s", err, buf.String())
	}
	buf.Reset()
	doctor.Print(&buf, rs, false)
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "fail") {
		t.Fatalf("text: %q", buf.String())
	}
	srv.Close()
	if _, ok := doctor.DaemonDevices(context.Background(), srv.Client(), srv.URL); ok {
		t.Error("a stopped daemon answered")
	}
	expect(t, run1(t, doctor.Device("t1", func(ctx context.Context) (string, error) { <-ctx.Done(); return "", ctx.Err() })), doctor.Fail, "no answer")
}

// A receipt printer the daemon marks degraded fails with its condition
// named; a probe's Warning warns, its error fails.
func TestDeviceConditionAndWarning(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"status":"degraded","devices":{"r1":{"state":"degraded","condition":"cover open"}}}`))
	}))
	defer srv.Close()
	checks, ok := doctor.DaemonDevices(context.Background(), srv.Client(), srv.URL)
	if !ok || len(checks) != 1 {
		t.Fatalf("%v %d", ok, len(checks))
	}
	expect(t, run1(t, checks[0]), doctor.Fail, "cover open")
	expect(t, run1(t, doctor.Device("r1", func(context.Context) (string, error) { return "", doctor.Warning("paper near end") })), doctor.Warn, "paper near end")
	expect(t, run1(t, doctor.Device("r1", func(context.Context) (string, error) {
		return "", fmt.Errorf("status: %w", errors.New("paper out"))
	})), doctor.Fail, "paper out")
}
