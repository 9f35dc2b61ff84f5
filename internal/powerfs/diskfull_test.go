//go:build linux

package powerfs_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDiskFull runs the real daemon with its data directory on a disk
// that fills up mid-run (powerfs.SetCapacity), a ZVT terminal behind a
// tap that sees every APDU, and a fiscal printer. While the disk is full:
// every creating request answers 2xx or 503 STORE_UNAVAILABLE with
// Retry-After, never a 500 (a payment may also meet 409 TERMINAL_BUSY
// while an earlier one waits to be closed); /healthz answers 503; and no
// authorization reaches the terminal for a payment whose record failed.
// Once space is back the same daemon (no restart) answers /healthz 200,
// takes the refused requests again under their Idempotency-Keys, charges
// each payment once, and its database passes PRAGMA integrity_check.
func TestDiskFull(t *testing.T) {
	requireFUSE(t)
	pc := newPowerCut(t)
	term := newTillTerminal(t)
	defer term.stop()
	prn := newTillPrinter(t)
	defer prn.stop()
	pc.terminalAddr = term.addr
	pc.writeConfig(t, prn.addr)
	fsys := pc.disk.Clone()
	if err := fsys.Mount(pc.mnt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsys.Unmount() })
	d, err := startDaemon(pc.bin, pc.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.kill)
	c := &client{http: &http.Client{Timeout: 30 * time.Second}, url: d.url, apiKey: pc.apiKey}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nterminal line: %v\ndaemon log:\n%s", append(args, term.log(), d.stderr.tail(3000))...)
	}
	if err := waitTerminal(c, "t1", 15*time.Second); err != nil {
		fail("%v", err)
	}

	type request struct {
		path, key string
		body      []byte
		payment   bool
	}
	n := 0
	next := func() request {
		n++
		key := fmt.Sprintf("full-%d", n)
		if n%2 == 0 {
			// 1000+10n: unique, and never ending in 51-55, the amounts
			// that make the simulator decline, wait for an abort or stall.
			return request{path: "/v1/payments", key: key, payment: true,
				body: fmt.Appendf(nil, `{"type":"sale","terminal_id":"t1","amount":%d,"currency":"EUR","reference":%q}`, 1000+10*n, key)}
		}
		body, _ := invoiceBody(n)
		return request{path: "/v1/invoices", key: key, body: body}
	}
	// created sends r and, for a payment, waits until it is settled.
	created := func(r request, a answer) {
		t.Helper()
		if !r.payment {
			return
		}
		var p payment
		if err := jsonInto(a.body, &p); err != nil {
			fail("payment answer %s: %v", a.body, err)
		}
		if _, err := waitPayment(c, p.ID, 20*time.Second); err != nil {
			fail("%v", err)
		}
	}

	// Before: all is well.
	for range 4 {
		r := next()
		a, err := c.send("POST", r.path, r.key, r.body)
		if err != nil || a.status/100 != 2 {
			fail("POST %s before the disk filled: %d %s %v", r.path, a.status, a.body, err)
		}
		created(r, a)
	}
	if a, err := c.send("GET", "/healthz", "", nil); err != nil || a.status != 200 {
		fail("healthz before the disk filled: %d %s %v", a.status, a.body, err)
	}

	// The disk fills up: 32 KiB are left.
	fsys.SetCapacity(fsys.Used() + 32<<10)
	var refused []request
	unavailable, paymentsRefused := 0, 0
	for end := time.Now().Add(20 * time.Second); (unavailable < 12 || paymentsRefused < 2) && time.Now().Before(end); {
		r := next()
		a, err := c.send("POST", r.path, r.key, r.body)
		switch {
		case err != nil:
			fail("POST %s on a full disk: no answer: %v", r.path, err)
		case a.status/100 == 2:
			// It fit; a payment still has to keep its promise below.
		case a.status == http.StatusServiceUnavailable && a.code == "STORE_UNAVAILABLE":
			if a.header.Get("Retry-After") == "" {
				fail("POST %s: 503 without Retry-After", r.path)
			}
			unavailable++
			if r.payment {
				paymentsRefused++
			}
			refused = append(refused, r)
		case r.payment && a.status == http.StatusConflict && a.code == "TERMINAL_BUSY":
			refused = append(refused, r)
			time.Sleep(100 * time.Millisecond)
		default:
			fail("POST %s on a full disk: %d %s, want 2xx or 503 STORE_UNAVAILABLE", r.path, a.status, a.body)
		}
	}
	if unavailable == 0 || paymentsRefused == 0 {
		fail("%d requests (%d payments) refused on a full disk, want some of each (used %d)", unavailable, paymentsRefused, fsys.Used())
	}
	time.Sleep(1100 * time.Millisecond) // past the cached probe
	if a, err := c.send("GET", "/healthz", "", nil); err != nil || a.status != http.StatusServiceUnavailable ||
		!strings.Contains(string(a.body), `"store":"not writable"`) {
		fail("healthz on a full disk: %d %s %v, want 503 store not writable", a.status, a.body, err)
	}
	if err := waitTerminalIdle(c, 10*time.Second); err != nil {
		t.Logf("terminal while the disk is full: %v", err)
	}

	// Space comes back; the same process recovers.
	fsys.SetCapacity(0)
	deadline := time.Now().Add(15 * time.Second)
	for {
		a, err := c.send("GET", "/healthz", "", nil)
		if err == nil && a.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			fail("healthz not ok within 15 s after space came back: %d %s %v", a.status, a.body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := waitTerminal(c, "t1", 15*time.Second); err != nil {
		fail("after space came back: %v", err)
	}
	for _, r := range refused {
		a, err := c.send("POST", r.path, r.key, r.body)
		if err != nil || a.status/100 != 2 {
			fail("retry of POST %s (%s) after space came back: %d %s %v", r.path, r.key, a.status, a.body, err)
		}
		created(r, a)
	}
	select {
	case err := <-d.done:
		fail("the daemon exited during the test: %v", err)
	default:
	}

	// Every authorization on the line belongs to a payment whose start
	// was recorded before it went out, once each; the terminal's journal
	// charged nothing posgate does not know as completed.
	pays, err := listAll[payment](c, "/v1/payments?limit=200")
	if err != nil {
		fail("list payments: %v", err)
	}
	started, completed := 0, map[int64]int{}
	for _, p := range pays {
		if p.StartedAt != nil {
			started++
		}
		if p.Status == "completed" {
			completed[p.Amount]++
		}
	}
	if got := term.count(0x06, 0x01); got != started {
		fail("%d authorizations (06 01) on the terminal line, but %d payments with a recorded start", got, started)
	}
	for _, e := range term.sim.Journal() {
		if e.Approved && !e.Reversed && completed[e.Amount] != 1 {
			fail("the terminal charged %d (receipt %d), which is not one completed payment on the box", e.Amount, e.ReceiptNo)
		}
	}
	if err := d.stop(); err != nil {
		t.Error(err)
	}
	if got := check(t, pc.db, ""); got.Integrity != "ok" {
		t.Errorf("integrity_check after the disk was full: %s", got.Integrity)
	}
	t.Logf("%d requests, %d refused with 503 STORE_UNAVAILABLE (%d payments), %d payments (%d started), all back without a restart",
		n, unavailable, paymentsRefused, len(pays), started)
}

// waitTerminalIdle waits until t1 runs no payment.
func waitTerminalIdle(c *client, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		var dev struct {
			State string `json:"state"`
		}
		err := c.get("/v1/devices/t1", &dev)
		if err == nil && dev.State != "busy" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still %q (%v)", dev.State, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
