//go:build linux || darwin

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/simulator"
	simescpos "github.com/posgate/posgate/simulator/escpos"
)

// [[printers]] protocol = "escpos": an invoice made through the API is
// printed once on a simulated ESC/POS printer on a pty, with its IIC, and
// the QR code the simulator decodes from the printed bytes is the
// invoice's verification URL.
func TestServeESCPOSPrinter(t *testing.T) {
	sim := simescpos.New(simescpos.Options{})
	srv, err := simulator.ServePTY(context.Background(), sim.Handle, simulator.PTYOptions{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := writeConfig(t, fiscalConfig+fmt.Sprintf(`
[[printers]]
id = "r1"
protocol = "escpos"
port = %q
code_page = "cp852"
`, srv.Path()))
	pos := cliKey(t, cfg, "pos")
	admin := cliKey(t, cfg, "admin")
	getenv := func(k string) string {
		if k == "POSGATE_CERT_PASSWORD" {
			return "posgate-test"
		}
		return ""
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"certs", "import", "--config", cfg, "--p12", "../../fiscal/testdata/openssl3-aes.p12",
		"--bind", pos.ID}, getenv, &out, &errb); err != nil {
		t.Fatalf("certs import: %v\n%s", err, errb.String())
	}
	d := startDaemon(t, cfg)

	body := `{"type":"sale","items":[{"name":"Čaj od šipka","quantity":2,"unit_price":150,"vat_rate":21}],"payments":[{"type":"cash","amount":300}]}`
	key, idem := pos, "inv-escpos-1"
	get := func(method, path, body string) []byte {
		req, _ := http.NewRequest(method, d.url+path, strings.NewReader(body))
		req.Header.Set("X-Api-Key", key.ClientID+":"+key.ClientSecret)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", idem)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		return b
	}
	var inv struct {
		ID  string
		Sig struct {
			Code      string `json:"code"`
			VerifyURL string `json:"verify_url"`
		} `json:"fiscal_signature"`
		Print struct {
			State string `json:"state"`
		} `json:"print"`
	}
	if err := json.Unmarshal(get("POST", "/v1/invoices", body), &inv); err != nil || inv.Sig.VerifyURL == "" {
		t.Fatalf("invoice: %+v %v", inv, err)
	}
	waitPrinted := func() {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); inv.Print.State != "printed"; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("invoice not printed; state %q\n%s", inv.Print.State, d.stderr.String())
			}
			json.Unmarshal(get("GET", "/v1/invoices/"+inv.ID, ""), &inv)
		}
	}
	waitPrinted()
	j := sim.Journal()
	if len(j) != 1 {
		t.Fatalf("%d receipts printed, want 1", len(j))
	}
	if qr := j[0].QRPayloads(); len(qr) != 1 || qr[0] != inv.Sig.VerifyURL {
		t.Errorf("decoded QR %q, want the verification URL %q", qr, inv.Sig.VerifyURL)
	}
	text := j[0].Text()
	// The console render spaces out double-size letters.
	for _, want := range []string{"Čaj od šipka", "IIC " + inv.Sig.Code, "T O T A L"} {
		if !strings.Contains(text, want) {
			t.Errorf("receipt lacks %q:\n%s", want, text)
		}
	}

	// Out of paper: the next invoice's job waits without writing a byte,
	// the printer is degraded in /healthz and in a device.degraded event,
	// and with paper back the receipt prints once, as the original.
	sim.SetPaperOut(true)
	idem = "inv-escpos-2"
	if err := json.Unmarshal(get("POST", "/v1/invoices", body), &inv); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(string(get("GET", "/healthz", "")), `"condition":"paper out"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("healthz never showed paper out: %s", get("GET", "/healthz", ""))
		}
	}
	// GET /v1/devices lists the receipt printer with what keeps it from
	// printing.
	printerState := func() (state, lastErr string) {
		t.Helper()
		var dev struct {
			Kind      string `json:"kind"`
			Protocol  string `json:"protocol"`
			State     string `json:"state"`
			LastError string `json:"last_error"`
		}
		if err := json.Unmarshal(get("GET", "/v1/devices/r1", ""), &dev); err != nil || dev.Kind != "printer" || dev.Protocol != "escpos" {
			t.Fatalf("GET /v1/devices/r1: %+v, %v", dev, err)
		}
		var list struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(get("GET", "/v1/devices", ""), &list); err != nil || !slices.ContainsFunc(list.Data, func(d struct {
			ID string `json:"id"`
		}) bool {
			return d.ID == "r1"
		}) {
			t.Fatalf("GET /v1/devices does not list r1: %+v, %v", list, err)
		}
		return dev.State, dev.LastError
	}
	if st, why := printerState(); st != "error" || why != "paper out" {
		t.Errorf("receipt printer out of paper in /v1/devices: %q (%q), want error (paper out)", st, why)
	}
	key = admin
	if ev := string(get("GET", "/v1/events?type=device.degraded", "")); !strings.Contains(ev, "printer out of paper") || !strings.Contains(ev, `"r1"`) {
		t.Errorf("no device.degraded event for r1 out of paper: %s", ev)
	}
	key = pos
	sim.SetPaperOut(false)
	inv.Print.State = ""
	waitPrinted()
	if st, why := printerState(); st != "online" || why != "" {
		t.Errorf("receipt printer with paper back in /v1/devices: %q (%q), want online", st, why)
	}
	j = sim.Journal()
	if len(j) != 2 {
		t.Fatalf("%d receipts printed, want 2", len(j))
	}
	if strings.Contains(j[1].Text(), "DUPLIKAT") {
		t.Errorf("a job that never started printed as a copy:\n%s", j[1].Text())
	}
}
