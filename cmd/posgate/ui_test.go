//go:build linux

package main

import (
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

	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
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
// log in with an admin key, see terminal t1 go offline when its simulator
// is stopped, press Retry on a dead delivery and see it delivered at a
// real loopback receiver. A screenshot is kept as an artifact.
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

	cfg := writeConfig(t, fmt.Sprintf(`
[webhooks]
allow_http = true
allow_private = true
max_attempts = 1

[[terminals]]
id = "t1"
protocol = "zvt"
port = %q
`, "tcp://"+tsim.Addr()))
	admin := cliKey(t, cfg, "admin")
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
	waitOnline(t, d.url)

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
