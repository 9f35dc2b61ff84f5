//go:build linux || darwin

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

const fiscalConfig = `
[fiscal]
tin = "12345678"
business_unit = "bb123bb123"
tcr = "cc123cc123"
software = "ss123ss123"
`

// The whole job on simulated devices: serve --simulate starts a printer
// on a pty, an invoice made through the API is signed with the
// certificate bound to the caller's key, printed once on the simulated
// printer with its IIC, and reported printed.
func TestSimulateInvoicePrints(t *testing.T) {
	cfg := writeConfig(t, fiscalConfig)
	pos := cliKey(t, cfg, "pos")
	getenv := func(k string) string {
		if k == "POSGATE_CERT_PASSWORD" {
			return "posgate-test"
		}
		return ""
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"certs", "import", "--config", cfg, "--p12", "../../fiscal/testdata/openssl3-aes.p12",
		"--bind", pos.ID}, getenv, &out, &errb)
	if err != nil {
		t.Fatalf("certs import: %v\n%s", err, errb.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg, "--simulate"}, noenv, stdout, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := listenLine.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("serve did not listen:\n%s", stdout.String())
	}

	body := `{"type":"sale","items":[{"name":"Espresso","quantity":2,"unit_price":150,"vat_rate":21}],"payments":[{"type":"cash","amount":300}]}`
	req, _ := http.NewRequest("POST", base+"/v1/invoices", strings.NewReader(body))
	req.Header.Set("X-Api-Key", pos.ClientID+":"+pos.ClientSecret)
	req.Header.Set("Idempotency-Key", "inv-1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("create invoice: %d %s", res.StatusCode, b)
	}
	var inv struct {
		ID  string
		Sig struct {
			Code string `json:"code"`
		} `json:"fiscal_signature"`
		Print struct {
			State         string `json:"state"`
			ReceiptNumber int    `json:"receipt_number"`
		} `json:"print"`
	}
	if err := json.Unmarshal(b, &inv); err != nil || inv.Sig.Code == "" {
		t.Fatalf("invoice %s: %v", b, err)
	}
	for deadline := time.Now().Add(60 * time.Second); inv.Print.State != "printed"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("invoice not printed; last state %q\n%s", inv.Print.State, stdout.String())
		}
		req, _ := http.NewRequest("GET", base+"/v1/invoices/"+inv.ID, nil)
		req.Header.Set("X-Api-Key", pos.ClientID+":"+pos.ClientSecret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(res.Body)
		res.Body.Close()
		json.Unmarshal(b, &inv)
	}
	if inv.Print.ReceiptNumber != 1 {
		t.Fatalf("receipt number %d, want 1", inv.Print.ReceiptNumber)
	}
	printed := stdout.String()
	if n := strings.Count(printed, "--- simulated printer p1 ---"); n != 1 {
		t.Fatalf("%d documents printed, want 1:\n%s", n, printed)
	}
	if !strings.Contains(printed, inv.Sig.Code) {
		t.Fatalf("printed receipt lacks the IIC %s:\n%s", inv.Sig.Code, printed)
	}
}

// make run's promise: --dev --simulate on an empty store prints an admin
// key and an invoice curl that works as printed.
func TestDevSimulateInvoiceCurl(t *testing.T) {
	cfg := writeConfig(t, fiscalConfig)
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg, "--dev", "--simulate"}, noenv, stdout, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := listenLine.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
	}
	m := regexp.MustCompile(`Invoice: curl -s -X POST -H 'X-Api-Key: (\S+)' -H "Idempotency-Key: ([^"]+)" -H 'Content-Type: (\S+)' -d '(.+)' http://\S+/v1/invoices`).
		FindStringSubmatch(stdout.String())
	if base == "" || m == nil {
		t.Fatalf("no listen line or invoice curl:\n%s", stdout.String())
	}
	// Send exactly the headers the printed line sends (curl -d alone
	// would say it is a form).
	req, _ := http.NewRequest("POST", base+"/v1/invoices", strings.NewReader(m[4]))
	req.Header.Set("X-Api-Key", m[1])
	req.Header.Set("Idempotency-Key", "try-1") // the printed line makes one with date
	req.Header.Set("Content-Type", m[3])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 201 || !strings.Contains(string(b), `"fiscal_signature"`) {
		t.Fatalf("printed curl: %d %s", res.StatusCode, b)
	}
}

// A sale on the simulated terminal t1 through the API completes with the
// terminal's receipt number; an amount ending in 51 is declined.
func TestSimulatePayment(t *testing.T) {
	cfg := writeConfig(t, "")
	pos := cliKey(t, cfg, "pos")
	admin := cliKey(t, cfg, "admin")
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg, "--simulate"}, noenv, stdout, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := listenLine.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("serve did not listen:\n%s", stdout.String())
	}
	call := func(method, path, body, idem string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("X-Api-Key", pos.ClientID+":"+pos.ClientSecret)
		if idem != "" {
			req.Header.Set("Idempotency-Key", idem)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	pay := func(amount int, idem string) map[string]any {
		t.Helper()
		var (
			status int
			p      map[string]any
		)
		// The terminal registers in the background after start: until then
		// it is busy or offline, and the cashier is told so.
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			status, p = call("POST", "/v1/payments", fmt.Sprintf(`{"type":"sale","terminal_id":"t1","amount":%d,"currency":"EUR"}`, amount), idem)
			if status < 500 && status != 409 || time.Now().After(deadline) {
				break
			}
		}
		if status != 201 && status != 202 {
			t.Fatalf("create payment: %d %v", status, p)
		}
		for deadline := time.Now().Add(30 * time.Second); ; {
			_, p = call("GET", "/v1/payments/"+p["id"].(string)+"?wait=10s", "", "")
			if s := p["status"]; s != "pending" && s != "in_progress" || time.Now().After(deadline) {
				return p
			}
		}
	}
	sale := pay(1234, "sale-1")
	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Devices map[string]struct{ State string } `json:"devices"`
	}
	json.NewDecoder(res.Body).Decode(&health)
	res.Body.Close()
	if health.Devices["t1"].State != "online" || health.Devices["p1"].State != "online" {
		t.Fatalf("healthz devices: %+v", health.Devices)
	}
	res, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`posgate_device_online{device="t1"} 1`, `posgate_webhook_deliveries_pending 0`} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if sale["status"] != "completed" || sale["receipt_number"] == nil {
		t.Fatalf("sale: %v", sale)
	}
	declined := pay(1251, "sale-2")
	if declined["status"] != "failed" {
		t.Fatalf("amount …51: %v", declined)
	}

	// The terminal's last frames are there for a technician, masked.
	req, _ := http.NewRequest("GET", base+"/v1/devices/t1/frames", nil)
	req.Header.Set("X-Api-Key", admin.ClientID+":"+admin.ClientSecret)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var frames struct {
		Data []struct {
			Dir     string `json:"dir"`
			Summary string `json:"summary"`
		} `json:"data"`
	}
	json.NewDecoder(res.Body).Decode(&frames)
	res.Body.Close()
	if res.StatusCode != 200 || len(frames.Data) == 0 {
		t.Fatalf("frames: %d %+v", res.StatusCode, frames)
	}
	sawAuth := false
	for _, f := range frames.Data {
		sawAuth = sawAuth || strings.Contains(f.Summary, "Authorization")
	}
	if !sawAuth {
		t.Fatalf("no Authorization among the last frames: %+v", frames.Data)
	}

	// Both simulated devices came online, and each said so in the event log.
	req, _ = http.NewRequest("GET", base+"/v1/events?type=device.connected", nil)
	req.Header.Set("X-Api-Key", admin.ClientID+":"+admin.ClientSecret)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var events struct {
		Data []map[string]any `json:"data"`
	}
	json.NewDecoder(res.Body).Decode(&events)
	res.Body.Close()
	seen := map[string]bool{}
	for _, e := range events.Data {
		if b, err := json.Marshal(e); err == nil {
			for _, id := range []string{"t1", "p1"} {
				if strings.Contains(string(b), `"device_id":"`+id+`"`) {
					seen[id] = true
				}
			}
		}
	}
	if !seen["t1"] || !seen["p1"] {
		t.Fatalf("device.connected events: %v", events.Data)
	}
}
