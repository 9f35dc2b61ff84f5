//go:build linux

package powerfs_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/internal/powerfs"
)

// The fiscal identity the test daemon issues invoices under.
const (
	pcTIN          = "12345678"
	pcBusinessUnit = "bb123bb123"
	pcTCR          = "cc123cc123"
	pcSoftware     = "ss123ss123"
)

// Load per run: invoices posted by this many concurrent clients. The cut
// falls at a seeded point among the filesystem operations they cause.
const (
	pcInvoices = 30
	pcWorkers  = 2
)

// webhookWait bounds how long the restarted daemon may take to deliver
// what it had not delivered before the cut.
const webhookWait = 15 * time.Second

// TestPowerCut runs the real posgate binary on powerfs, cuts the power
// at a seeded filesystem operation while clients create invoices and the
// daemon prints them, and restarts it on what survived. Every invoice
// that got a 201 must be there, with its number, its invoice.created
// outbox event, and numbering without gaps; a client retrying an
// unanswered request with its Idempotency-Key must not get a second
// invoice; the webhook receiver must get every invoice at least once, and
// none that the box lost; the simulated fiscal printer, which lives in
// this process and so survives the cut, must have printed every invoice
// exactly once and nothing else; the database must pass PRAGMA
// integrity_check.
//
// POWERCUT_SEEDS sets how many seeds run, POWERCUT_SEED reruns one. Odd
// seeds tear and reorder unsynced writes, even seeds drop them; every
// third seed cuts the power a second time while the daemon restarts.
func TestPowerCut(t *testing.T) {
	stopTestDeadline := requireFUSE(t)
	start := time.Now()
	pc := newPowerCut(t)
	calib := pc.run(t, 0, 0, 0, 0)
	stopTestDeadline() // each seed has its own deadline
	if calib.failure != "" || calib.acked != pcInvoices {
		t.Fatalf("calibration run without a cut: %d of %d acked: %s", calib.acked, pcInvoices, calib.failure)
	}
	t.Logf("calibration: %d filesystem ops for %d invoices, %d to restart", calib.ops, pcInvoices, calib.restartOps)
	var acked, inFlight, failed, double, syncErrs, syncErrHit, cutInLoad, openAtCut, printedCut, printed int
	var sum tally
	list := seeds(t, 60)
	for _, seed := range list {
		rng := rngFor(seed)
		k, k2 := 1+rng.Int64N(calib.ops), int64(0)
		what := fmt.Sprintf("loss %v, cut at op %d of ~%d", lossFor(seed), k, calib.ops)
		if seed%3 == 0 {
			k2 = 1 + rng.Int64N(calib.restartOps)
			what += fmt.Sprintf(", again at op %d of ~%d of the restart", k2, calib.restartOps)
			double++
		}
		failSync := int64(0)
		if seed%4 == 2 {
			// Among the fsyncs before the cut, so that it comes first.
			failSync = 1 + rng.Int64N(max(1, calib.fsyncs*k/calib.ops))
			what += fmt.Sprintf(", fsync %d of ~%d fails first", failSync, calib.fsyncs)
			syncErrs++
		}
		stop := deadline(t, seedDeadline, func() string {
			return fmt.Sprintf("seed %d (%s)\nrerun: POWERCUT_SEED=%d go test -run '^TestPowerCut$' ./internal/powerfs", seed, what, seed)
		})
		res := pc.run(t, seed, k, k2, failSync)
		stop()
		if res.cutInLoad {
			cutInLoad++
		}
		if res.syncErrHit {
			syncErrHit++
		}
		if res.openAtCut {
			openAtCut++
		}
		sum.add(res.tally)
		printedCut += res.printedCut
		printed += res.printed
		acked += res.acked
		inFlight += res.inFlight
		if res.failure != "" {
			failed++
			t.Errorf("seed %d (%s; %d acked): %s\nrerun: POWERCUT_SEED=%d go test -run '^TestPowerCut$' ./internal/powerfs",
				seed, what, res.acked, res.failure, seed)
		}
	}
	t.Logf("%d seeds (%d cut during the load, %d cut twice, %d with an fsync error armed, %d hit before the cut, "+
		"%d cut with a receipt open on the printer), %d failed; "+
		"%d invoices acked before the cut, all checked after it; %d unanswered requests retried; "+
		"%d receipts printed before the cut, %d after the restart; %v",
		len(list), cutInLoad, double, syncErrs, syncErrHit, openAtCut, failed, acked, inFlight,
		printedCut, printed-printedCut, time.Since(start).Round(time.Millisecond))
	fmt.Printf("SUMMARY powercut-invoices: runs=%d cuts=%d acked=%d lost=%d double_charges=%d over_credits=0 double_prints=%d failed=%d (%v)\n",
		len(list), cutInLoad+double, acked, sum.lost, sum.doubles, sum.doublePrints, failed, time.Since(start).Round(time.Second))
	// A harness whose cut never comes checks nothing.
	if len(list) >= 10 && cutInLoad < len(list)/2 {
		t.Errorf("the cut came during the load in only %d of %d seeds", cutInLoad, len(list))
	}
}

// powerCut is the set-up shared by every seed: the binaries, a config
// outside the mount, and a disk image with an admin key bound to a
// certificate, made once by the real CLI and cloned per run.
type powerCut struct {
	bin, victim string
	cfg         string
	mnt         string
	dataDir     string
	db          string
	apiKey      string
	disk        *powerfs.FS
	recv        *receiver
	// terminalAddr, if set, puts terminal t1 (ZVT over TCP) in the config.
	terminalAddr string
}

func newPowerCut(t *testing.T) *powerCut {
	t.Helper()
	pc := &powerCut{
		bin:    build(t, "github.com/posgate/posgate/cmd/posgate"),
		victim: build(t, "./testdata/victim"),
		mnt:    t.TempDir(),
		recv:   newReceiver(t),
	}
	work := t.TempDir()
	pc.dataDir = filepath.Join(pc.mnt, "data")
	pc.db = filepath.Join(pc.dataDir, "posgate.db")
	pc.cfg = filepath.Join(work, "posgate.toml")
	pc.writeConfig(t, "") // the set-up prints nothing

	// posgate makes the missing data directory itself, durably
	// (TestFreshDataDirSurvivesCut).
	r := newRig(t, pc.mnt)

	out := runCLI(t, pc.bin, "keys", "create", "--json", "--label", "power-cut test", "--role", "admin", "--config", pc.cfg)
	var key struct {
		ID, ClientID, ClientSecret string
	}
	if err := json.Unmarshal(out, &struct {
		ID           *string `json:"id"`
		ClientID     *string `json:"client_id"`
		ClientSecret *string `json:"client_secret"`
	}{&key.ID, &key.ClientID, &key.ClientSecret}); err != nil || key.ClientSecret == "" {
		t.Fatalf("keys create --json: %q: %v", out, err)
	}
	pc.apiKey = key.ClientID + ":" + key.ClientSecret
	certPath, keyPath := writeCertificate(t, work, pcTIN)
	runCLI(t, pc.bin, "certs", "import", "--cert", certPath, "--key", keyPath, "--tin", pcTIN, "--bind", key.ID, "--json", "--config", pc.cfg)

	// The head office subscribes to invoice.created (the daemon pings it
	// before it answers).
	d, err := startDaemon(pc.bin, pc.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.kill)
	c := &client{http: &http.Client{Timeout: 30 * time.Second}, url: d.url, apiKey: pc.apiKey}
	var ep struct {
		ID string `json:"id"`
	}
	body := fmt.Appendf(nil, `{"url":%q,"events":["invoice.created"]}`, pc.recv.url)
	if _, err := c.post("/v1/webhooks", "powercut-webhook", body, &ep); err != nil {
		t.Fatalf("create webhook endpoint: %v\n%s", err, d.stderr.tail(2000))
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}

	// What the set-up made durable is the disk every run starts from.
	r.fsys.Cut()
	if err := r.fsys.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := r.fsys.Reset(powerfs.LossDrop, nil); err != nil {
		t.Fatal(err)
	}
	pc.disk = r.fsys
	return pc
}

// writeConfig writes the daemon's config, with printer p1 on the
// simulator at printerAddr (host:port) unless that is "". The config is
// outside the mount: each run has its own printer, on its own port.
func (pc *powerCut) writeConfig(t *testing.T, printerAddr string) {
	t.Helper()
	config := fmt.Sprintf(`listen = "127.0.0.1:0"
data_dir = %q

[log]
level = "warn"

[webhooks]
allow_http    = true # the receiver is this test, on 127.0.0.1
allow_private = true

[fiscal]
tin = %q
business_unit = %q
tcr = %q
software = %q
`, pc.dataDir, pcTIN, pcBusinessUnit, pcTCR, pcSoftware)
	if printerAddr != "" {
		config += fmt.Sprintf(`
[[printers]]
id       = "p1"
protocol = "datecs-x"
port     = "tcp://%s"
`, printerAddr)
	}
	if pc.terminalAddr != "" {
		config += fmt.Sprintf(`
[[terminals]]
id       = "t1"
protocol = "zvt"
port     = "tcp://%s"
`, pc.terminalAddr)
	}
	if err := os.WriteFile(pc.cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ack is an invoice the daemon answered 201 for.
type ack struct {
	req     int
	id      string
	number  string
	ordinal int64
}

// invoice is the part of an invoice the checks read.
type invoice struct {
	ID      string `json:"id"`
	Number  string `json:"number"`
	Ordinal int64  `json:"ordinal"`
	Totals  struct {
		Total int64 `json:"total"`
	} `json:"totals"`
	Signature struct {
		Code string `json:"code"` // the IIC, printed on the receipt
	} `json:"fiscal_signature"`
	Print *struct {
		State         string `json:"state"` // pending, printed, dead
		Attempts      int    `json:"attempts"`
		LastError     string `json:"last_error"`
		ReceiptNumber int    `json:"receipt_number"`
	} `json:"print"`
}

// runResult is what one run saw.
type runResult struct {
	ops        int64 // filesystem ops during the load
	fsyncs     int64 // file fsyncs during the load
	restartOps int64 // filesystem ops from the restart to listening
	cutInLoad  bool  // the armed cut came while the clients were posting
	syncErrHit bool  // the fsync error came while the clients were posting
	openAtCut  bool  // the cut left a receipt open on the printer
	printedCut int   // receipts the printer had closed at the cut
	printed    int   // receipts the printer had closed at the end
	acked      int
	inFlight   int    // requests sent but not answered 201 before the cut
	tally             // what the checks counted
	failure    string // why the run failed; "" if it passed
}

// invoiceBody is request i's body. The price identifies the request, so
// a duplicate invoice shows up as a repeated total.
func invoiceBody(i int) (body []byte, total int64) {
	total = int64(100 + i)
	return fmt.Appendf(nil, `{"type":"sale","items":[{"name":"Item %d","quantity":1,"unit_price":%d,"vat_rate":21}],"payments":[{"type":"cash","amount":%d}]}`,
		i, total, total), total
}

func idemKey(seed uint64, i int) string { return fmt.Sprintf("powercut-%d-%d", seed, i) }

// run is one seed: a clone of the disk and a new printer, the daemon
// under load with the power cut at op k (0: no cut until the load is
// done), then a restart on what survived (cut again at its op k2, if not
// 0, and restarted once more) and the checks. Failures of the checks are
// returned; failures of the harness itself stop the test.
func (pc *powerCut) run(t *testing.T, seed uint64, k, k2, failSync int64) runResult {
	t.Helper()
	// A harness failure (a stuck unmount, say) names the seed too.
	fatal := func(err error) {
		t.Helper()
		t.Fatalf("seed %d: %v\nrerun: POWERCUT_SEED=%d go test -run '^TestPowerCut$' ./internal/powerfs", seed, err, seed)
	}
	pc.recv.reset()
	prn := newTillPrinter(t)
	defer prn.stop()
	pc.writeConfig(t, prn.addr)
	fsys := pc.disk.Clone()
	if err := fsys.Mount(pc.mnt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsys.Unmount() }) // a no-op unless the run stopped half-way
	var kl killer
	d, err := startDaemon(pc.bin, pc.cfg, &kl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.kill) // before the unmount above, if the test stops here
	c := &client{http: &http.Client{Timeout: 30 * time.Second}, url: d.url, apiKey: pc.apiKey}
	opsBefore, fsyncsBefore := fsys.Ops(), fsys.Fsyncs()
	if k > 0 {
		fsys.ArmCut(k, kl.kill)
	}
	if failSync > 0 {
		fsys.FailFsync(failSync)
	}
	// failed reports whether the daemon may answer with errors: the
	// power is off, or the fsync error has come.
	failed := func() bool { return fsys.IsCut() || failSync > 0 && fsys.Fsyncs() >= fsyncsBefore+failSync }

	// The load: workers take request numbers in turn and stop at the
	// first request that gets no answer (the daemon is dead). An error
	// answer after the fsync error is no ack either; the client retries
	// it after the restart.
	var (
		mu       sync.Mutex
		acks     []ack
		inFlight []int
		next     atomic.Int64
		wg       sync.WaitGroup
		loadErr  error
	)
	for range pcWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1))
				if i > pcInvoices {
					return
				}
				body, _ := invoiceBody(i)
				var inv invoice
				status, err := c.post("/v1/invoices", idemKey(seed, i), body, &inv)
				mu.Lock()
				switch {
				case err == nil && status == http.StatusCreated:
					acks = append(acks, ack{req: i, id: inv.ID, number: inv.Number, ordinal: inv.Ordinal})
				case err != nil && failed() && status == http.StatusInternalServerError:
					// A store fault is 503 STORE_UNAVAILABLE, never 500.
					loadErr = fmt.Errorf("request %d after the fault: %v", i, err)
				case err != nil && failed():
					inFlight = append(inFlight, i)
				default:
					loadErr = fmt.Errorf("request %d before any cut: status %d: %v", i, status, err)
				}
				mu.Unlock()
				if status == 0 || loadErr != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	res := runResult{ops: fsys.Ops() - opsBefore, fsyncs: fsys.Fsyncs() - fsyncsBefore,
		acked: len(acks), inFlight: len(inFlight), cutInLoad: fsys.IsCut()}
	res.syncErrHit = failSync > 0 && res.fsyncs >= failSync
	if loadErr != nil {
		d.exit(2 * time.Second) // a daemon that failed says why on its way out
		t.Fatalf("seed %d: %v\ndaemon (%v) log:\n%s", seed, loadErr, d.cmd.ProcessState, d.stderr.tail(2000))
	}

	// The power goes (now, if the armed cut did not come), the daemon
	// dies with it, and the machine boots on what was durable.
	fsys.Cut()
	kl.kill()
	d.wait()
	atCut := prn.sim.Counters()
	res.openAtCut, res.printedCut = atCut.ReceiptOpen, atCut.Fiscal
	if err := fsys.Unmount(); err != nil {
		fatal(err)
	}
	if err := fsys.Reset(lossFor(seed), rngFor(seed)); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Mount(pc.mnt); err != nil {
		t.Fatal(err)
	}

	// A second cut, at op k2 of the restart, hits the daemon's recovery;
	// the machine boots again on what survived both.
	if k2 > 0 {
		var kl2 killer
		fsys.ArmCut(k2, kl2.kill)
		d2, err := startDaemon(pc.bin, pc.cfg, &kl2)
		fsys.Cut()
		kl2.kill()
		if err == nil {
			d2.wait()
		}
		if err := fsys.Unmount(); err != nil {
			fatal(err)
		}
		if err := fsys.Reset(lossFor(seed), rand.New(rand.NewPCG(seed, 2))); err != nil {
			t.Fatal(err)
		}
		if err := fsys.Mount(pc.mnt); err != nil {
			t.Fatal(err)
		}
	}

	opsBefore = fsys.Ops()
	d, err = startDaemon(pc.bin, pc.cfg, nil)
	res.restartOps = fsys.Ops() - opsBefore
	if err != nil {
		res.failure = "restart after the cut: " + err.Error()
		if err := fsys.Unmount(); err != nil {
			fatal(err)
		}
		return res
	}
	t.Cleanup(d.kill)
	c.url = d.url
	failures := pc.check(c, seed, acks, inFlight, &res.tally)
	acked := map[string]bool{}
	for _, a := range acks {
		acked[a.id] = true
	}
	printFail := checkPrints(c, prn, acked, &res.tally)
	failures = append(failures, printFail...)
	res.printed = prn.sim.Counters().Fiscal
	if err := d.stop(); err != nil {
		failures = append(failures, err.Error())
	}
	if got := check(t, pc.db, ""); got.Integrity != "ok" {
		failures = append(failures, "integrity_check: "+got.Integrity)
	}
	if err := fsys.Unmount(); err != nil {
		fatal(err)
	}
	if len(failures) > 0 {
		res.failure = strings.Join(failures, "; ") + "\ndaemon log:\n" + d.stderr.tail(1500)
	}
	return res
}

// tally counts what a run's checks found, for the summary line.
type tally struct {
	lost         int // acknowledged invoices gone after the cut
	doubles      int // requests that made two invoices
	doublePrints int // invoices printed on more than one receipt
}

func (t *tally) add(o tally) {
	t.lost += o.lost
	t.doubles += o.doubles
	t.doublePrints += o.doublePrints
}

// check asks the restarted daemon for what the clients were promised.
func (pc *powerCut) check(c *client, seed uint64, acks []ack, inFlight []int, tl *tally) []string {
	var fail []string
	invs, err := listAll[invoice](c, "/v1/invoices?limit=200")
	if err != nil {
		return []string{"list invoices: " + err.Error()}
	}
	byID := map[string]invoice{}
	for _, inv := range invs {
		byID[inv.ID] = inv
	}
	lost := 0
	for _, a := range acks {
		inv, ok := byID[a.id]
		switch {
		case !ok:
			lost++
		case inv.Number != a.number || inv.Ordinal != a.ordinal:
			fail = append(fail, fmt.Sprintf("invoice %s came back as number %s (ordinal %d), was acked as %s (%d)",
				a.id, inv.Number, inv.Ordinal, a.number, a.ordinal))
		}
	}
	tl.lost += lost
	if lost > 0 {
		fail = append(fail, fmt.Sprintf("%d of %d acked invoices lost", lost, len(acks)))
	}

	// Each invoice has its invoice.created event, written in its
	// transaction.
	evs, err := listAll[struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}](c, "/v1/events?type=invoice.created&limit=1000")
	if err != nil {
		return append(fail, "list events: "+err.Error())
	}
	events := map[string]int{}
	for _, e := range evs {
		events[e.Data.ID]++
	}
	for _, inv := range invs {
		if n := events[inv.ID]; n != 1 {
			fail = append(fail, fmt.Sprintf("invoice %s (%s) has %d invoice.created events, want 1", inv.ID, inv.Number, n))
		}
	}
	if len(evs) != len(invs) {
		fail = append(fail, fmt.Sprintf("%d invoice.created events for %d invoices", len(evs), len(invs)))
	}

	// A client retries what got no answer, with the same Idempotency-Key:
	// it gets the invoice the daemon may have made before the cut, or a
	// new one, never both. The last acked request replays its answer.
	for _, i := range inFlight {
		body, _ := invoiceBody(i)
		var inv invoice
		if _, err := c.post("/v1/invoices", idemKey(seed, i), body, &inv); err != nil {
			fail = append(fail, fmt.Sprintf("retry of unanswered request %d: %v", i, err))
		}
	}
	if len(acks) > 0 {
		a := acks[len(acks)-1]
		body, _ := invoiceBody(a.req)
		var inv invoice
		if _, err := c.post("/v1/invoices", idemKey(seed, a.req), body, &inv); err != nil || inv.ID != a.id {
			fail = append(fail, fmt.Sprintf("replay of acked request %d: got invoice %q (%v), want %s", a.req, inv.ID, err, a.id))
		}
	}
	invs, err = listAll[invoice](c, "/v1/invoices?limit=200")
	if err != nil {
		return append(fail, "list invoices after retries: "+err.Error())
	}
	totals := map[int64]int{}
	var ordinals []int64
	for _, inv := range invs {
		totals[inv.Totals.Total]++
		ordinals = append(ordinals, inv.Ordinal)
	}
	for total, n := range totals {
		if n > 1 {
			tl.doubles++
			fail = append(fail, fmt.Sprintf("request with total %d made %d invoices", total, n))
		}
	}
	// The head office gets every invoice at least once, and nothing it
	// got is missing from the box: an event is sent only after its
	// transaction committed.
	present := map[string]bool{}
	for _, inv := range invs {
		present[inv.ID] = true
	}
	var missing []string
	for deadline := time.Now().Add(webhookWait); ; time.Sleep(20 * time.Millisecond) {
		got := pc.recv.received()
		missing = missing[:0]
		for id := range present {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			for id := range got {
				if !present[id] {
					fail = append(fail, fmt.Sprintf("invoice %s was delivered to the webhook but is gone after the cut", id))
				}
			}
			break
		}
	}
	if len(missing) > 0 {
		fail = append(fail, fmt.Sprintf("%d of %d invoices not delivered to the webhook within %v after the restart", len(missing), len(invs), webhookWait))
	}

	// Numbering is gapless and monotonic: 1…n, once each.
	slices.Sort(ordinals)
	for i, o := range ordinals {
		if o != int64(i+1) {
			fail = append(fail, fmt.Sprintf("invoice ordinals %v: want 1…%d without gaps", ordinals, len(ordinals)))
			break
		}
	}
	return fail
}
