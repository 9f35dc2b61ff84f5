//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/doctor"
	"github.com/posgate/posgate/simulator"
	simescpos "github.com/posgate/posgate/simulator/escpos"
	simnexo "github.com/posgate/posgate/simulator/nexo"
)

// TestDoctorReceiptPrinterAndNexo: `posgate doctor` probes an ESC/POS
// receipt printer (simulated on a pty) with its real-time status and a
// nexo terminal (simulated over TLS) with a Diagnosis request, through a
// running daemon's /healthz and on its own; paper out and cover open fail
// with the condition named, paper near end warns, a stopped terminal
// fails.
func TestDoctorReceiptPrinterAndNexo(t *testing.T) {
	printer := simescpos.New(simescpos.Options{})
	pty, err := simulator.ServePTY(context.Background(), printer.Handle, simulator.PTYOptions{Log: zerolog.Nop()})
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { pty.Close() })
	term, err := simnexo.New(simnexo.Options{Step: 10 * time.Millisecond, Passphrase: "Shop-Pass 42"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := term.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	root := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(root, term.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(nexoTerminal, srv.Addr(), "Shop-Pass 42", root)+fmt.Sprintf(`
[[printers]]
id = "r1"
protocol = "escpos"
port = %q
code_page = "cp852"
`, pty.Path()))

	// With a daemon: doctor reports what its links see, and names a
	// receipt printer's condition.
	d := startDaemon(t, cfg)
	waitOnline(t, d.url)
	listen := strings.TrimPrefix(d.url, "http://")
	withDaemon := func(k string) string {
		if k == "POSGATE_LISTEN" {
			return listen
		}
		return ""
	}
	rs, err := runDoctorJSON(t, cfg, withDaemon)
	if err != nil {
		t.Fatalf("healthy, with a daemon: %v %+v", err, rs)
	}
	for _, c := range []string{"device t1", "device r1"} {
		wantStatus(t, rs, c, doctor.OK)
		if !strings.Contains(rs[c].Detail, "running daemon") {
			t.Errorf("%s not from the daemon: %+v", c, rs[c])
		}
	}
	printer.SetPaperOut(true)
	for deadline := time.Now().Add(20 * time.Second); ; sleep(100) {
		res, err := http.Get(d.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(b), "paper out") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon never saw paper out: %s", b)
		}
	}
	rs, err = runDoctorJSON(t, cfg, withDaemon)
	wantStatus(t, rs, "device r1", doctor.Fail)
	if err == nil || !strings.Contains(rs["device r1"].Detail, "paper out") {
		t.Errorf("paper out through the daemon: exit %v, %+v", err, rs["device r1"])
	}
	printer.SetPaperOut(false)
	d.stop(t)

	// Without a daemon: doctor sends DLE EOT 1…4 and a DiagnosisRequest.
	rs, err = runDoctorJSON(t, cfg, noenv)
	if err != nil {
		t.Fatalf("healthy, no daemon: %v %+v", err, rs)
	}
	wantStatus(t, rs, "device r1", doctor.OK)
	wantStatus(t, rs, "device t1", doctor.OK)
	if !strings.Contains(rs["device r1"].Detail, "ESC/POS real-time status") || !strings.Contains(rs["device t1"].Detail, "nexo Diagnosis") {
		t.Errorf("direct probes: %+v %+v", rs["device r1"], rs["device t1"])
	}
	diagnoses := 0
	for _, h := range term.Requests() {
		if h.MessageCategory == "Diagnosis" {
			diagnoses++
		}
	}
	if diagnoses == 0 {
		t.Errorf("the terminal saw no Diagnosis: %+v", term.Requests())
	}

	check := func(what string, want doctor.Status, detail string) {
		t.Helper()
		rs, err := runDoctorJSON(t, cfg, noenv)
		r := rs["device r1"]
		if r.Status != want || !strings.Contains(r.Detail, detail) {
			t.Errorf("%s: %+v, want %s naming %q", what, r, want, detail)
		}
		if (want == doctor.Fail) != (err != nil) {
			t.Errorf("%s: exit %v", what, err)
		}
	}
	printer.SetPaperOut(true)
	check("paper out", doctor.Fail, "paper out")
	printer.SetPaperOut(false)
	printer.SetCoverOpen(true)
	check("cover open", doctor.Fail, "cover open")
	printer.SetCoverOpen(false)
	printer.SetPaperNearEnd(true)
	check("paper near end", doctor.Warn, "paper near end")
	printer.SetPaperNearEnd(false)

	cancel()
	srv.Close()
	rs, err = runDoctorJSON(t, cfg, noenv)
	wantStatus(t, rs, "device t1", doctor.Fail)
	wantStatus(t, rs, "device r1", doctor.OK)
	if err == nil {
		t.Error("terminal stopped: doctor exited 0")
	}
}
