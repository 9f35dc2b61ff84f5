//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/doctor"
)

func runDoctorJSON(t *testing.T, cfg string, getenv func(string) string) (map[string]doctor.Result, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"doctor", "--config", cfg, "--json"}, getenv, &out, &errb)
	var rs []doctor.Result
	if jerr := json.Unmarshal(out.Bytes(), &rs); jerr != nil {
		t.Fatalf("doctor --json printed %q (%v): %s", out.String(), jerr, errb.String())
	}
	m := map[string]doctor.Result{}
	for _, r := range rs {
		m[r.Check] = r
	}
	return m, err
}

func wantStatus(t *testing.T, rs map[string]doctor.Result, check string, want doctor.Status) {
	t.Helper()
	r, ok := rs[check]
	if !ok || r.Status != want {
		t.Errorf("check %q: %+v, want %s (all: %+v)", check, r, want, rs)
	}
}

// TestDoctor runs `posgate doctor` against a healthy setup (simulated
// terminal and printer on ptys, a store with a webhook endpoint at a
// loopback receiver), beside a running daemon and without one, then
// breaks one thing at a time and sees that check fail and the exit fail.
func TestDoctor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var devs Config
	tpty, err := startTerminalSimulator(ctx, &devs, io.Discard, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer tpty.Close()
	ppty, err := startPrinterSimulator(ctx, &devs, io.Discard, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer ppty.Close()
	hits := 0
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer receiver.Close()

	cfg := writeConfig(t, fmt.Sprintf(`
[webhooks]
allow_http = true
allow_private = true

[[terminals]]
id = "t1"
protocol = "zvt"
port = %q

[[printers]]
id = "p1"
protocol = "datecs-x"
port = %q
`, tpty.Path(), ppty.Path()))
	admin := cliKey(t, cfg, "admin")
	var certOut bytes.Buffer
	if err := run(context.Background(), []string{"certs", "import", "--config", cfg, "--p12", "../../fiscal/testdata/openssl3-aes.p12", "--json"},
		func(k string) string {
			if k == "POSGATE_CERT_PASSWORD" {
				return "posgate-test"
			}
			return ""
		}, &certOut, io.Discard); err != nil {
		t.Fatalf("certs import: %v", err)
	}
	var cert struct{ ID string }
	json.Unmarshal(certOut.Bytes(), &cert)
	if cert.ID == "" {
		t.Fatalf("certs import printed %q", certOut.String())
	}

	// A daemon owns the ports: doctor asks its /healthz.
	d := startDaemon(t, cfg)
	req, _ := http.NewRequest("POST", d.url+"/v1/webhooks", strings.NewReader(`{"url":"`+receiver.URL+`"}`))
	req.Header.Set("X-Api-Key", admin.ClientID+":"+admin.ClientSecret)
	req.Header.Set("Idempotency-Key", "doctor-1")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ep struct{ ID string }
	json.NewDecoder(res.Body).Decode(&ep)
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("create endpoint: %d", res.StatusCode)
	}
	listen := strings.TrimPrefix(d.url, "http://")
	withDaemon := func(k string) string {
		if k == "POSGATE_LISTEN" {
			return listen
		}
		return ""
	}
	waitOnline(t, d.url)
	rs, err := runDoctorJSON(t, cfg, withDaemon)
	if err != nil {
		t.Fatalf("healthy setup with a daemon: %v %+v", err, rs)
	}
	if rs["clock"].Status == doctor.Fail { // warn when this box has no NTP
		t.Errorf("clock: %+v", rs["clock"])
	}
	for _, c := range []string{"config", "store", "master key", "device t1", "device p1", "webhook " + ep.ID} {
		wantStatus(t, rs, c, doctor.OK)
	}
	if !strings.Contains(rs["device t1"].Detail, "running daemon") {
		t.Errorf("with a daemon, devices come from it: %+v", rs["device t1"])
	}
	d.stop(t)
	hitsBefore := hits

	// No daemon: doctor opens the ports and sends each protocol's status
	// command.
	rs, err = runDoctorJSON(t, cfg, noenv)
	if err != nil {
		t.Fatalf("healthy setup without a daemon: %v %+v", err, rs)
	}
	for _, c := range []string{"config", "store", "master key", "webhook " + ep.ID, "certificate " + cert.ID} {
		wantStatus(t, rs, c, doctor.OK)
	}
	wantStatus(t, rs, "device t1", doctor.OK)
	wantStatus(t, rs, "device p1", doctor.OK)
	if !strings.Contains(rs["device t1"].Detail, "ZVT status enquiry") || !strings.Contains(rs["device p1"].Detail, "Datecs status") {
		t.Errorf("direct probes: %+v %+v", rs["device t1"], rs["device p1"])
	}
	if hits != hitsBefore {
		t.Errorf("doctor spent a delivery: %d requests", hits-hitsBefore)
	}

	// Broken, one at a time.
	dataDir := filepath.Join(filepath.Dir(cfg), "data")
	breakAndCheck := func(what, check string, want doctor.Status, breakIt, repair func()) {
		t.Helper()
		breakIt()
		rs, err := runDoctorJSON(t, cfg, noenv)
		wantStatus(t, rs, check, want)
		if want == doctor.Fail && err == nil {
			t.Errorf("%s: doctor exited 0", what)
		}
		repair()
	}
	breakAndCheck("terminal gone", "device t1", doctor.Fail, func() { tpty.Close() }, func() {})
	breakAndCheck("printer gone", "device p1", doctor.Fail, func() { ppty.Close() }, func() {})
	breakAndCheck("receiver down", "webhook "+ep.ID, doctor.Fail, receiver.Close, func() {})
	key := filepath.Join(dataDir, "master.key")
	breakAndCheck("key readable by others", "master key", doctor.Warn, func() { os.Chmod(key, 0o644) }, func() { os.Chmod(key, 0o600) })
	keyBytes, _ := os.ReadFile(key)
	breakAndCheck("key missing", "master key", doctor.Fail, func() { os.Remove(key) }, func() { os.WriteFile(key, keyBytes, 0o600) })
	db := filepath.Join(dataDir, "posgate.db")
	breakAndCheck("store corrupt", "store", doctor.Fail, func() {
		os.Remove(db + "-wal")
		os.Remove(db + "-shm")
		os.WriteFile(db, bytes.Repeat([]byte("garbage!"), 4096), 0o600)
	}, func() {})
	cfgBytes, _ := os.ReadFile(cfg)
	breakAndCheck("config invalid", "config", doctor.Fail, func() {
		os.WriteFile(cfg, append(cfgBytes, []byte("\nbogus_key = 1\n")...), 0o600)
	}, func() { os.WriteFile(cfg, cfgBytes, 0o600) })
}

// waitOnline waits until the daemon's links report every device online.
func waitOnline(t *testing.T, base string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(b), "offline") && strings.Contains(string(b), `"devices"`) {
				return
			}
		}
		sleep(25)
	}
	t.Fatal("devices did not come online")
}

func sleep(ms int) { time.Sleep(time.Duration(ms) * time.Millisecond) }
