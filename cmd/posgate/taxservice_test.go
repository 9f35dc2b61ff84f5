package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/simulator/taxservice"
)

// call sends a JSON request with key k and decodes the answer into out.
func call(t *testing.T, method, url string, k createdKey, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("X-Api-Key", k.ClientID+":"+k.ClientSecret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("k-%d", time.Now().UnixNano()))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, res.StatusCode, b)
		}
	}
	return res.StatusCode
}

// The Montenegrin shop end to end against the simulator: the day's
// initial cash deposit, an invoice through the API, its FIC on GET
// /v1/invoices/{id} once the worker registered it, /healthz's
// tax_service, and the admin retry route refusing a completed one.
func TestServeRegistersWithTaxService(t *testing.T) {
	sim, err := taxservice.Start(taxservice.Options{RequireInitialDeposit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`
[fiscal]
tin = "12345678"
business_unit = "bb123bb123"
tcr = "cc123cc123"
software = "ss123ss123"
operator = "oo123oo123"
seller_name = "Shop d.o.o."
seller_address = "Njegoseva 1"
seller_town = "Podgorica"
service_url = %q
service_ca_file = %q
service_timeout = "5s"
`, sim.URL(), ca))
	pos, admin := cliKey(t, cfg, "pos"), cliKey(t, cfg, "admin")
	getenv := func(k string) string {
		if k == "POSGATE_CERT_PASSWORD" {
			return "posgate-test"
		}
		return ""
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"certs", "import", "--config", cfg, "--p12", "../../fiscal/testdata/openssl3-aes.p12",
		"--bind", pos.ID, "--json"}, getenv, &out, &errb); err != nil {
		t.Fatalf("certs import: %v\n%s", err, errb.String())
	}
	var cert struct{ ID string }
	if err := json.Unmarshal(out.Bytes(), &cert); err != nil || cert.ID == "" {
		t.Fatalf("certs import --json: %q %v", out.String(), err)
	}
	d := startDaemon(t, cfg)

	// The device's registration from the CLI: queued in the store, sent by
	// the daemon's worker, the TCR code printed.
	tcrOut, err := cli(t, "fiscal", "register-tcr", "--config", cfg, "--internal-id", "till-1", "--certificate", cert.ID, "--wait", "10s")
	if err != nil || !regexp.MustCompile(`TCR code [a-z]{2}[0-9]{3}[a-z]{2}[0-9]{3} `).MatchString(tcrOut) {
		t.Fatalf("fiscal register-tcr: %v %q", err, tcrOut)
	}

	var dep struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		FIC    string `json:"fic"`
	}
	if code := call(t, "POST", d.url+"/v1/fiscal/cash-deposits", pos, `{"operation":"initial","amount":10000}`, &dep); code != 202 {
		t.Fatalf("cash deposit: %d %+v", code, dep)
	}
	var inv struct {
		ID            string                `json:"id"`
		Signature     struct{ Code string } `json:"fiscal_signature"`
		Fiscalization struct {
			Status, FIC, Code string
			Attempts          int
		} `json:"fiscalization"`
	}
	body := `{"type":"sale","items":[{"name":"Espresso","quantity":2,"unit_price":150,"vat_rate":21}],"payments":[{"type":"cash","amount":300}]}`
	if code := call(t, "POST", d.url+"/v1/invoices", pos, body, &inv); code != 201 || inv.Fiscalization.Status != "pending" {
		t.Fatalf("create: %d %+v", code, inv)
	}
	for deadline := time.Now().Add(10 * time.Second); inv.Fiscalization.Status == "pending" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		call(t, "GET", d.url+"/v1/invoices/"+inv.ID, pos, "", &inv)
	}
	fic, ok := sim.FIC(inv.Signature.Code)
	if inv.Fiscalization.Status != "completed" || !ok || inv.Fiscalization.FIC != fic {
		t.Fatalf("fiscalization %+v, simulator FIC %q (the deposit went first: fault 58 otherwise)", inv.Fiscalization, fic)
	}
	var h struct {
		TaxService struct {
			Status  string `json:"status"`
			Backlog struct {
				Pending int `json:"pending"`
			} `json:"backlog"`
		} `json:"tax_service"`
	}
	if code := call(t, "GET", d.url+"/healthz", pos, "", &h); code != 200 || h.TaxService.Status != "ok" {
		t.Fatalf("healthz: %d %+v", code, h)
	}
	if res, err := http.Get(d.url + "/metrics"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !bytes.Contains(b, []byte(`posgate_fiscal_registrations{state="pending"} 0`)) {
			t.Fatalf("metrics lack the registration backlog:\n%s", b)
		}
	}
	var e struct{ Error struct{ Code string } }
	if code := call(t, "POST", d.url+"/v1/invoices/"+inv.ID+"/fiscalization/retry", admin, "", &e); code != 409 || e.Error.Code != "REGISTRATION_NOT_RETRYABLE" {
		t.Fatalf("retry of a completed registration: %d %+v", code, e)
	}
	if code := call(t, "POST", d.url+"/v1/invoices/"+inv.ID+"/fiscalization/retry", pos, "", &e); code != 403 {
		t.Fatalf("retry with a pos key: %d", code)
	}
	if code := call(t, "POST", d.url+"/v1/fiscal/cash-deposits", pos, `{"operation":"initial","amount":-1}`, &e); code != 400 {
		t.Fatalf("negative deposit: %d %+v", code, e)
	}
}

// posgate sim taxservice prints its URL and writes the CA to trust.
func TestSimTaxServiceCommand(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"sim", "taxservice", "--addr", "127.0.0.1:0", "--ca-out", ca}, noenv, out, io.Discard)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "trust ") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sim taxservice did not stop")
	}
	if !strings.Contains(out.String(), "tax service simulator on https://127.0.0.1:") {
		t.Fatalf("output: %s", out.String())
	}
	if b, err := os.ReadFile(ca); err != nil || !bytes.Contains(b, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("CA file: %v", err)
	}
}

// The tax service keys are checked at start, naming the key.
func TestTaxServiceConfigErrors(t *testing.T) {
	const ids = "[fiscal]\ntin = \"12345678\"\nbusiness_unit = \"bb123bb123\"\ntcr = \"cc123cc123\"\nsoftware = \"ss123ss123\"\n"
	const full = ids + "operator = \"oo123oo123\"\nseller_name = \"Shop\"\n"
	for name, tc := range map[string]struct{ file, want string }{
		"ErrPlainHTTP":   {full + `service_url = "http://efitest.tax.gov.me/fs-v1"`, "fiscal.service_url"},
		"ErrNoOperator":  {ids + "seller_name = \"Shop\"\nservice_url = \"https://127.0.0.1:1/fs-v1\"", "fiscal.operator"},
		"ErrNoSeller":    {ids + "operator = \"oo123oo123\"\nservice_url = \"https://127.0.0.1:1/fs-v1\"", "fiscal.seller_name"},
		"ErrBadTIN":      {strings.Replace(full, "12345678", "1234", 1) + `service_url = "https://127.0.0.1:1/fs-v1"`, "fiscal.tin"},
		"ErrAlbania":     {full + "country = \"al\"\ncurrency = \"ALL\"\nservice_url = \"https://127.0.0.1:1/fs-v1\"", `fiscal.service_url = "https://127.0.0.1:1/fs-v1": posgate registers the invoices of country "al" with no tax service`},
		"ErrNoCAFile":    {full + "service_url = \"https://127.0.0.1:1/fs-v1\"\nservice_ca_file = \"/nonexistent/ca.pem\"", "fiscal.service_ca_file"},
		"ErrAttempts":    {full + "max_attempts = 0", "fiscal.max_attempts"},
		"ErrReceiptWait": {full + "receipt_fic_wait = \"1m\"", "fiscal.receipt_fic_wait"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			os.WriteFile(path, []byte(tc.file), 0o600)
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"serve", "--config", path, "--print-config"}, noenv, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want mention of %q", err, tc.want)
			}
		})
	}
}
