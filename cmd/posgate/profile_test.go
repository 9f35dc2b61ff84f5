//go:build linux || darwin

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/simulator"
	simescpos "github.com/posgate/posgate/simulator/escpos"
	"github.com/posgate/posgate/simulator/taxservice"
)

// Configuration that does not fit the country profile is refused at
// start, naming the key.
func TestProfileConfigErrors(t *testing.T) {
	const ids = "[fiscal]\ntin = \"12345678\"\nbusiness_unit = \"bb123bb123\"\ntcr = \"cc123cc123\"\nsoftware = \"ss123ss123\"\n"
	const escpos = "\n[[printers]]\nid = \"r1\"\nprotocol = \"escpos\"\nport = \"/dev/usb/lp0\"\ncode_page = \"cp852\"\n"
	const datecs = "\n[[printers]]\nid = \"p1\"\nprotocol = \"datecs-x\"\nport = \"/dev/ttyUSB0\"\n"
	for name, tc := range map[string]struct{ file, want string }{
		"UnknownCountry": {ids + "country = \"xx\"", "fiscal.country"},
		"BGNoPrinter":    {ids + "country = \"bg\"\noperator = \"0001\"", `config printers = []: country "bg" needs a printer`},
		"BGReceiptPrint": {ids + "country = \"bg\"\noperator = \"0001\"" + escpos, "printers[0].protocol"},
		"BGNoOperator":   {ids + "country = \"bg\"" + datecs, "fiscal.operator"},
		"BGServiceURL":   {ids + "country = \"bg\"\noperator = \"0001\"\nservice_url = \"https://127.0.0.1:1/fs-v1\"" + datecs, "fiscal.service_url"},
		"NoneVerifyURL":  {ids + "country = \"none\"\nverify_url = \"https://example.invalid/ic\"", "fiscal.verify_url"},
		"NoneServiceURL": {ids + "country = \"none\"\nservice_url = \"https://127.0.0.1:1/fs-v1\"", "fiscal.service_url"},
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
	for name, file := range map[string]string{
		"BG":        ids + "country = \"bg\"\noperator = \"0001\"\ncurrency = \"BGN\"" + datecs,
		"None":      ids + "country = \"none\"" + escpos,
		"MEDatecs":  ids + datecs, // today's configs: me on a Datecs printer still starts
		"MEReceipt": ids + escpos,
		"DevConfig": string(mustRead(t, "../../configs/dev.toml")),
	} {
		t.Run("OK"+name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			os.WriteFile(path, []byte(file), 0o600)
			var out, errb bytes.Buffer
			if err := run(context.Background(), []string{"serve", "--config", path, "--print-config"}, noenv, &out, &errb); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startReceiptPrinter serves a simulated ESC/POS printer on a pty.
func startReceiptPrinter(t *testing.T) (*simescpos.Printer, string) {
	t.Helper()
	sim := simescpos.New(simescpos.Options{})
	srv, err := simulator.ServePTY(context.Background(), sim.Handle, simulator.PTYOptions{Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return sim, fmt.Sprintf("\n[[printers]]\nid = \"r1\"\nprotocol = \"escpos\"\nport = %q\ncode_page = \"cp852\"\n", srv.Path())
}

// waitFor polls cond every 50 ms for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Profile me end to end: POST /v1/invoices, registration with the
// simulated tax service, and the ESC/POS receipt on a pty with the IIC,
// the FIC and a QR code that decodes to the invoice's verification URL;
// fiscalization.completed carries the FIC.
func TestProfileMEEndToEnd(t *testing.T) {
	tax, err := taxservice.Start(taxservice.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tax.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, tax.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	sim, printer := startReceiptPrinter(t)
	cfg := writeConfig(t, fmt.Sprintf(`
[fiscal]
country = "me"
tin = "12345678"
business_unit = "bb123bb123"
tcr = "cc123cc123"
software = "ss123ss123"
operator = "oo123oo123"
seller_name = "Shop d.o.o."
service_url = %q
service_ca_file = %q
service_timeout = "5s"
receipt_fic_wait = "10s"
`, tax.URL(), ca)+printer)
	pos, admin := cliKey(t, cfg, "pos"), cliKey(t, cfg, "admin")
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
	var inv struct {
		ID        string
		Signature struct {
			Code      string `json:"code"`
			VerifyURL string `json:"verify_url"`
		} `json:"fiscal_signature"`
		Print         struct{ State string } `json:"print"`
		Fiscalization struct{ Status, FIC string }
	}
	body := `{"type":"sale","items":[{"name":"Čaj od šipka","quantity":2,"unit_price":150,"vat_rate":21}],"payments":[{"type":"cash","amount":300}]}`
	if code := call(t, "POST", d.url+"/v1/invoices", pos, body, &inv); code != 201 {
		t.Fatalf("create: %d %+v", code, inv)
	}
	waitFor(t, "print", func() bool {
		call(t, "GET", d.url+"/v1/invoices/"+inv.ID, pos, "", &inv)
		return inv.Print.State == "printed" && inv.Fiscalization.Status == "completed"
	})
	fic, ok := tax.FIC(inv.Signature.Code)
	if !ok || inv.Fiscalization.FIC != fic {
		t.Fatalf("FIC %q on the invoice, simulator %q", inv.Fiscalization.FIC, fic)
	}
	j := sim.Journal()
	if len(j) != 1 {
		t.Fatalf("%d receipts printed, want 1", len(j))
	}
	if qr := j[0].QRPayloads(); len(qr) != 1 || qr[0] != inv.Signature.VerifyURL {
		t.Errorf("decoded QR %q, want the verification URL %q", qr, inv.Signature.VerifyURL)
	}
	text := j[0].Text()
	for _, want := range []string{"IIC " + inv.Signature.Code, "FIC " + fic} {
		if !strings.Contains(text, want) {
			t.Errorf("receipt lacks %q:\n%s", want, text)
		}
	}
	var ev bytes.Buffer
	waitFor(t, "fiscalization.completed", func() bool {
		var page map[string]any
		call(t, "GET", d.url+"/v1/events?type=fiscalization.completed", admin, "", &page)
		ev.Reset()
		fmt.Fprint(&ev, page)
		return strings.Contains(ev.String(), fic)
	})
	if n := strings.Count(ev.String(), fic); n < 1 {
		t.Errorf("fiscalization.completed lacks the FIC: %s", ev.String())
	}
}

// Profile none end to end: a key bound to no certificate issues an
// invoice, the receipt prints with its number and no IIC, receipt.printed
// fires and fiscalization.completed never does.
func TestProfileNoneEndToEnd(t *testing.T) {
	sim, printer := startReceiptPrinter(t)
	cfg := writeConfig(t, `
[fiscal]
country = "none"
tin = "12345678"
business_unit = "shop1"
tcr = "till1"
software = "posgate"
`+printer)
	pos, admin := cliKey(t, cfg, "pos"), cliKey(t, cfg, "admin")
	d := startDaemon(t, cfg)
	var inv struct {
		ID, Number, CertificateID string
		Signature                 struct{ Code string }  `json:"fiscal_signature"`
		Print                     struct{ State string } `json:"print"`
	}
	body := `{"type":"sale","items":[{"name":"Kava","quantity":1,"unit_price":200,"vat_rate":21}],"payments":[{"type":"cash","amount":200}]}`
	if code := call(t, "POST", d.url+"/v1/invoices", pos, body, &inv); code != 201 || inv.Signature.Code != "" {
		t.Fatalf("create without a certificate: %d %+v", code, inv)
	}
	waitFor(t, "print", func() bool {
		call(t, "GET", d.url+"/v1/invoices/"+inv.ID, pos, "", &inv)
		return inv.Print.State == "printed"
	})
	j := sim.Journal()
	if len(j) != 1 {
		t.Fatalf("%d receipts, want 1", len(j))
	}
	if text := j[0].Text(); !strings.Contains(text, "No "+inv.Number) || strings.Contains(text, "IIC") || len(j[0].QRPayloads()) != 0 {
		t.Errorf("receipt of profile none:\n%s\nQR %q", text, j[0].QRPayloads())
	}
	var printed, completed map[string]any
	waitFor(t, "receipt.printed", func() bool {
		call(t, "GET", d.url+"/v1/events?type=receipt.printed", admin, "", &printed)
		return strings.Contains(fmt.Sprint(printed), inv.ID)
	})
	call(t, "GET", d.url+"/v1/events?type=fiscalization.completed", admin, "", &completed)
	if strings.Contains(fmt.Sprint(completed), inv.ID) {
		t.Errorf("profile none fired fiscalization.completed: %v", completed)
	}

	// POST /v1/invoices/{id}/reprint: a marked copy, once per
	// Idempotency-Key, and receipt.reprinted.
	reprint := func(idem string) (int, string) {
		req, _ := http.NewRequest("POST", d.url+"/v1/invoices/"+inv.ID+"/reprint", nil)
		req.Header.Set("X-Api-Key", pos.ClientID+":"+pos.ClientSecret)
		req.Header.Set("Idempotency-Key", idem)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, first := reprint("copy-1")
	if code != 200 || !strings.Contains(first, `"copy_id"`) {
		t.Fatalf("reprint: %d %s\n%s", code, first, d.stderr.String())
	}
	if code, again := reprint("copy-1"); code != 200 || again != first {
		t.Fatalf("reprint replayed: %d %s, first %s", code, again, first)
	}
	waitFor(t, "the copy", func() bool { return len(sim.Journal()) == 2 })
	time.Sleep(200 * time.Millisecond) // nothing more may come
	j = sim.Journal()
	if len(j) != 2 || !strings.Contains(j[1].Text(), "COPY / DUPLIKAT") || !strings.Contains(j[1].Text(), "No "+inv.Number) {
		t.Fatalf("%d receipts; the copy:\n%s", len(j), j[len(j)-1].Text())
	}
	var reprinted map[string]any
	call(t, "GET", d.url+"/v1/events?type=receipt.reprinted", admin, "", &reprinted)
	if n := strings.Count(fmt.Sprint(reprinted), inv.ID+"-copy-"); n != 1 {
		t.Errorf("receipt.reprinted: %v", reprinted)
	}
	// A printed job is not requeued; the route is admin's.
	var rq map[string]any
	if code := call(t, "POST", d.url+"/v1/print-jobs/"+inv.ID+"/requeue", admin, "", &rq); code != 409 {
		t.Errorf("requeue of a printed job: %d %v", code, rq)
	}
	if code := call(t, "POST", d.url+"/v1/print-jobs/"+inv.ID+"/requeue", pos, "", &rq); code != 403 {
		t.Errorf("requeue with a pos key: %d %v", code, rq)
	}
}

// devSimulate runs serve --dev --simulate on cfgText until the test ends
// and returns its base URL, the printed invoice curl's key and body, and
// its stdout.
func devSimulate(t *testing.T, cfgText string) (string, createdKey, string, *syncBuffer) {
	t.Helper()
	cfg := writeConfig(t, cfgText)
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg, "--dev", "--simulate"}, noenv, stdout, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	var base string
	waitFor(t, "listen line", func() bool {
		if m := listenLine.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
		return base != ""
	})
	m := regexp.MustCompile(`Invoice: curl -s -X POST -H 'X-Api-Key: (\S+)' -H "Idempotency-Key: ([^"]+)" -H 'Content-Type: (\S+)' -d '(.+)' http://\S+/v1/invoices`).
		FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no invoice curl:\n%s", stdout.String())
	}
	id, secret, _ := strings.Cut(m[1], ":")
	return base, createdKey{ClientID: id, ClientSecret: secret}, m[4], stdout
}

// make run with configs/dev.toml: serve --dev --simulate starts the
// simulated tax service and an ESC/POS receipt printer, and the printed
// invoice curl ends with a FIC on the invoice and a receipt with IIC, FIC
// and the QR code of the verification URL.
func TestDevSimulateMEPipeline(t *testing.T) {
	dev := string(mustRead(t, "../../configs/dev.toml"))
	base, key, body, stdout := devSimulate(t, dev[strings.Index(dev, "[fiscal]"):]) // writeConfig sets listen and data_dir
	if !strings.Contains(stdout.String(), "receipt printer p1 (ESC/POS)") {
		t.Fatalf("no simulated receipt printer:\n%s", stdout.String())
	}
	var inv struct {
		ID        string
		Signature struct {
			Code      string `json:"code"`
			VerifyURL string `json:"verify_url"`
		} `json:"fiscal_signature"`
		Print         struct{ State string } `json:"print"`
		Fiscalization struct{ Status, FIC string }
	}
	if code := call(t, "POST", base+"/v1/invoices", key, body, &inv); code != 201 {
		t.Fatalf("printed curl: %d %+v", code, inv)
	}
	waitFor(t, "FIC and print", func() bool {
		call(t, "GET", base+"/v1/invoices/"+inv.ID, key, "", &inv)
		return inv.Fiscalization.FIC != "" && inv.Print.State == "printed"
	})
	waitFor(t, "receipt on stdout", func() bool { return strings.Contains(stdout.String(), "[QR] ") })
	out := stdout.String()
	for _, want := range []string{"IIC " + inv.Signature.Code, "FIC " + inv.Fiscalization.FIC, "[QR] " + inv.Signature.VerifyURL} {
		if !strings.Contains(out, want) {
			t.Errorf("simulated receipt lacks %q:\n%s", want, out)
		}
	}
}

// make run with country "none": no dev certificate is made, and the
// printed invoice curl still issues an invoice, printed on p1.
func TestDevSimulateNone(t *testing.T) {
	base, key, body, stdout := devSimulate(t, "[fiscal]\ncountry = \"none\"\ntin = \"1\"\nbusiness_unit = \"shop1\"\ntcr = \"till1\"\nsoftware = \"posgate\"\n")
	var inv struct {
		ID            string
		CertificateID string                 `json:"certificate_id"`
		Print         struct{ State string } `json:"print"`
	}
	if code := call(t, "POST", base+"/v1/invoices", key, body, &inv); code != 201 {
		t.Fatalf("printed curl: %d %+v", code, inv)
	}
	waitFor(t, "print", func() bool {
		call(t, "GET", base+"/v1/invoices/"+inv.ID, key, "", &inv)
		return inv.Print.State == "printed"
	})
	var certs struct{ Data []any }
	if code := call(t, "GET", base+"/v1/certificates", key, "", &certs); code != 200 {
		t.Fatalf("certificates: %d", code)
	}
	if len(certs.Data) != 0 || inv.CertificateID != "cert_none" {
		t.Errorf("certificates %v, invoice's %q: a profile that signs nothing needs none", certs.Data, inv.CertificateID)
	}
	waitFor(t, "receipt on stdout", func() bool { return strings.Contains(stdout.String(), "--- simulated printer p1 ---") })
}
