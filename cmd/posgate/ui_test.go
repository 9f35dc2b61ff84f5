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
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/simulator"
	simescpos "github.com/posgate/posgate/simulator/escpos"
	"github.com/posgate/posgate/simulator/taxservice"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/posgate/posgate/store"
)

// chromium finds Debian's chromium; under CI=true its absence fails the
// test (.ci/run installs it), elsewhere it skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (.ci/run installs it)")
	}
	t.Skip("chromium is not installed")
	return ""
}

// TestStatusPageInChromium drives the status page in headless Chromium:
// log in with an admin key, see the tax service's state and the oldest
// invoice without a FIC, press Requeue on a dead print job and see it
// printed on a simulated ESC/POS printer, see terminal t1 go offline when
// its simulator is stopped, press Retry on a dead delivery and see it
// delivered at a real loopback receiver. A screenshot is kept as an
// artifact.
func TestStatusPageInChromium(t *testing.T) {
	browser := chromium(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The terminal's simulator runs here, on loopback TCP, so the test can
	// stop it and the daemon's link sees the line drop.
	sim := terminal.New(terminal.Options{Receipts: io.Discard, Log: zerolog.Nop()})
	tsim, err := simulator.ServeTCP(ctx, "127.0.0.1:0", sim.ServeTCP, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer tsim.Close()

	// The receiver answers the creation ping, then fails until healed.
	var healed atomic.Bool
	var delivered atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), `"ping"`) || healed.Load() {
			if healed.Load() {
				delivered.Add(1)
			}
			return
		}
		http.Error(w, "receiver down for the test", http.StatusInternalServerError)
	}))
	defer receiver.Close()

	// An ESC/POS receipt printer on a pty, and a tax service that is
	// stopped before the invoice is made, so the invoice waits for its FIC.
	printer := simescpos.New(simescpos.Options{})
	ppty, err := simulator.ServePTY(ctx, printer.Handle, simulator.PTYOptions{Log: zerolog.Nop()})
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer ppty.Close()
	tax, err := taxservice.Start(taxservice.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tax.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, tax.CAPEM(), 0o600); err != nil {
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
service_timeout = "2s"
receipt_fic_wait = "1s"

[webhooks]
allow_http = true
allow_private = true
max_attempts = 1

[[terminals]]
id = "t1"
protocol = "zvt"
port = %q

[[printers]]
id = "r1"
protocol = "escpos"
port = %q
code_page = "cp852"
`, tax.URL(), ca, "tcp://"+tsim.Addr(), ppty.Path()))
	admin, pos := cliKey(t, cfg, "admin"), cliKey(t, cfg, "pos")
	certEnv := func(k string) string {
		if k == "POSGATE_CERT_PASSWORD" {
			return "posgate-test"
		}
		return ""
	}
	var certErr bytes.Buffer
	if err := run(ctx, []string{"certs", "import", "--config", cfg, "--p12", "../../fiscal/testdata/openssl3-aes.p12",
		"--bind", pos.ID}, certEnv, io.Discard, &certErr); err != nil {
		t.Fatalf("certs import: %v\n%s", err, certErr.String())
	}
	invID := deadPrintJob(t, cfg, pos, printer, tax)

	d := startDaemon(t, cfg)
	key := admin.ClientID + ":" + admin.ClientSecret
	call := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, d.url+path, strings.NewReader(body))
		req.Header.Set("X-Api-Key", key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprint(time.Now().UnixNano()))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		return res.StatusCode, m
	}
	st, ep := call("POST", "/v1/webhooks", `{"url":"`+receiver.URL+`","events":["webhook.test"]}`)
	if st != 201 {
		t.Fatalf("create endpoint: %d %v", st, ep)
	}
	epID := ep["id"].(string)
	if st, _ := call("POST", "/v1/webhooks/"+epID+"/test", ""); st != 202 {
		t.Fatalf("test event: %d", st)
	}
	var deadID string
	for deadline := time.Now().Add(20 * time.Second); deadID == "" && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, l := call("GET", "/v1/webhooks/"+epID+"/deliveries?state=dead", ""); l != nil {
			if data, _ := l["data"].([]any); len(data) > 0 {
				deadID = data[0].(map[string]any)["id"].(string)
			}
		}
	}
	if deadID == "" {
		t.Fatal("the delivery did not go dead")
	}
	waitDevicesOnline(t, d.url) // the stopped tax service says "offline" in /healthz too

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("headless", true), chromedp.WindowSize(1200, 1400),
		// Loopback only: the browser resolves no name and uses no proxy
		// (chromedp's defaults already turn off background networking).
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true))
	// The browser's whole life is bounded: the test cannot hang on it.
	lctx, lcancel := context.WithTimeout(ctx, 90*time.Second)
	defer lcancel()
	actx, acancel := chromedp.NewExecAllocator(lctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	// step runs actions with a deadline from a context that has already
	// started the browser; on failure it shows what the page showed.
	step := func(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, d)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			body, _ := chromedp.Run(bctx, chromedp.OuterHTML("body"))
			t.Fatalf("%s: %v\npage:\n%s", what, err, body)
		}
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(d.url+"/ui/")); err != nil {
		t.Fatalf("open /ui/: %v", err)
	}
	step("log in", 15*time.Second,
		chromedp.WaitVisible(`#login`),
		chromedp.SendKeys(`#key`, key),
		chromedp.Click(`#login button[type=submit]`),
		chromedp.WaitVisible(`#app`))
	step("see t1 online, the store ok and the dead delivery", 15*time.Second,
		chromedp.WaitVisible(`tr[data-health="store"] .state-ok`),
		chromedp.WaitVisible(`tr[data-device="t1"] .state-online`),
		chromedp.WaitVisible(`tr[data-delivery="`+deadID+`"] button.retry`))
	url, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(url, admin.ClientSecret) || strings.Contains(url, "sk_") {
		t.Fatalf("the key is in the URL: %s", url)
	}

	// The tax service's state as /healthz has it, and the invoice that
	// waits for its FIC.
	var h struct {
		TaxService struct{ Status string } `json:"tax_service"`
	}
	if res, err := http.Get(d.url + "/healthz"); err != nil {
		t.Fatal(err)
	} else {
		json.NewDecoder(res.Body).Decode(&h)
		res.Body.Close()
	}
	if h.TaxService.Status == "" || h.TaxService.Status == "ok" {
		t.Fatalf("tax_service in /healthz: %+v (want a state other than ok: it is stopped)", h.TaxService)
	}
	step("see the tax service's state and the oldest invoice without a FIC", 15*time.Second,
		chromedp.WaitVisible(`#taxsvc .state-`+h.TaxService.Status),
		chromedp.WaitVisible(`#taxsvc .oldest[data-invoice="`+invID+`"]`))
	taxState, err := chromedp.Run(bctx, chromedp.Text(`#taxsvc td.state span`))
	if err != nil {
		t.Fatal(err)
	}
	if taxState != h.TaxService.Status {
		t.Errorf("page shows tax service %q, /healthz %q", taxState, h.TaxService.Status)
	}

	// Requeue the dead print job from the page: it prints.
	step("requeue the dead print job and see it printed", 30*time.Second,
		chromedp.WaitVisible(`tr[data-invoice="`+invID+`"] .state-dead`),
		chromedp.Click(`tr[data-invoice="`+invID+`"] button.requeue`),
		chromedp.WaitVisible(`tr[data-invoice="`+invID+`"] .state-printed`))
	if j := printer.Journal(); len(j) != 1 || !strings.Contains(j[0].Text(), "Espresso") {
		t.Errorf("printer journal after requeue: %d receipts", len(j))
	}

	tsim.Close() // the terminal goes away
	step("see t1 offline after its simulator stopped", 20*time.Second, chromedp.WaitVisible(`tr[data-device="t1"] .state-offline`))

	healed.Store(true)
	step("retry the dead delivery and see it delivered", 20*time.Second,
		chromedp.Click(`tr[data-delivery="`+deadID+`"] button.retry`),
		chromedp.WaitVisible(`tr[data-delivery="`+deadID+`"] .state-delivered`))
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if delivered.Load() < 1 {
		t.Error("the receiver got no delivery after Retry")
	}
	dir := os.Getenv("POSGATE_TEST_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, "posgate-ui-"+time.Now().Format("20060102-150405")+".png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// mechanismFault is a receipt printer that refuses every receipt with a
// mechanism fault: an error that spends a print attempt (not a wait).
type mechanismFault struct{}

func (mechanismFault) PrintReceipt(context.Context, device.Receipt) (device.ReceiptResult, error) {
	return device.ReceiptResult{}, &device.PrinterError{Message: "test: cutter jammed",
		Kinds: []error{device.ErrPrinterMechanism, device.ErrPrinterRejected}}
}

// deadPrintJob makes an invoice whose print job is dead: a daemon takes
// the invoice while the printer is out of paper (and the tax service is
// stopped, so it waits for its FIC); with the daemon stopped, the job gets
// an attempt budget of 1 and fiscal's print-job runner tries it on a
// printer with a mechanism fault, which makes it dead. Paper is back after.
func deadPrintJob(t *testing.T, cfg string, pos createdKey, printer *simescpos.Printer, tax *taxservice.Server) string {
	t.Helper()
	printer.SetPaperOut(true)
	tax.Close()
	d := startDaemon(t, cfg)
	var inv struct{ ID string }
	body := `{"type":"sale","items":[{"name":"Espresso","quantity":2,"unit_price":150,"vat_rate":21}],"payments":[{"type":"cash","amount":300}]}`
	if code := call(t, "POST", d.url+"/v1/invoices", pos, body, &inv); code != 201 || inv.ID == "" {
		t.Fatalf("create invoice: %d %+v\n%s", code, inv, d.stderr.String())
	}
	d.stop(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db, err := store.Open(ctx, filepath.Join(filepath.Dir(cfg), "data", "posgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Write.ExecContext(ctx, "UPDATE print_jobs SET max_attempts = 1, attempts = 0, next_attempt_at = 0 WHERE invoice_id = ? AND state = 'pending'", inv.ID); err != nil {
		t.Fatal(err)
	}
	jobs := fiscal.NewPrintJobs(db, fiscal.PrintJobsOptions{Printer: mechanismFault{}, PrinterID: "r1", Log: zerolog.Nop()})
	if ran, err := jobs.RunOnce(ctx); !ran || err != nil {
		t.Fatalf("print attempt: ran %v, %v", ran, err)
	}
	var state string
	if err := db.Read.QueryRowContext(ctx, "SELECT state FROM print_jobs WHERE invoice_id = ?", inv.ID).Scan(&state); err != nil || state != fiscal.PrintDead {
		t.Fatalf("print job %q (%v), want dead", state, err)
	}
	if n := len(printer.Journal()); n != 0 {
		t.Fatalf("%d receipts printed before the requeue", n)
	}
	printer.SetPaperOut(false)
	return inv.ID
}

// waitDevicesOnline waits until /healthz reports every device online.
func waitDevicesOnline(t *testing.T, base string) {
	t.Helper()
	var h struct {
		Devices map[string]struct{ State string } `json:"devices"`
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); sleep(25) {
		res, err := http.Get(base + "/healthz")
		if err != nil {
			continue
		}
		err = json.NewDecoder(res.Body).Decode(&h)
		res.Body.Close()
		online := err == nil && len(h.Devices) > 0
		for _, d := range h.Devices {
			online = online && d.State == "online"
		}
		if online {
			return
		}
	}
	t.Fatalf("devices did not come online: %+v", h.Devices)
}
