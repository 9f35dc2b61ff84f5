//go:build linux

package powerfs_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/simulator/printer"
	"github.com/posgate/posgate/simulator/terminal"
)

// moneyStep is one operation the till asks posgate for.
type moneyStep struct {
	name   string
	kind   string // sale, refund, reversal, x, z, cash
	amount int64
	of     string // refund, reversal: the step of the sale it credits
}

// moneyScenario is what the till does in every run: two card sales, a
// linked refund of the first, a reversal of the second, an X report, cash
// put into the drawer, and the Z report that closes the day. Amounts are
// unique, so the terminal's journal names the step of every entry.
var moneyScenario = []moneyStep{
	{name: "sale A", kind: "sale", amount: 2000},
	{name: "sale B", kind: "sale", amount: 1500},
	{name: "refund A", kind: "refund", amount: 500, of: "sale A"},
	{name: "reversal B", kind: "reversal", of: "sale B"},
	{name: "X report", kind: "x"},
	{name: "cash in", kind: "cash", amount: 1000},
	{name: "Z report", kind: "z"},
}

// Waits of a money run: a settled payment, and the terminal's readiness
// after a restart (registration and the reconcile of an interrupted
// payment, with the terminal's own timeout in between).
const (
	moneyPaymentWait  = 20 * time.Second
	moneyTerminalWait = 20 * time.Second
)

// till is the point of sale's memory across the cut: what it asked, and
// what posgate answered.
type till struct {
	seed     uint64
	steps    []moneyStep
	payments map[string]string  // step -> payment id
	acked    map[string]payment // step -> the settled payment the till was shown
	printed  map[string][]byte  // step -> the 201 body of a report or cash operation
	refused  map[string]string  // step -> why posgate refused it (4xx/503 with a code)
}

func newTill(seed uint64, steps []moneyStep) *till {
	return &till{seed: seed, steps: steps, payments: map[string]string{}, acked: map[string]payment{},
		printed: map[string][]byte{}, refused: map[string]string{}}
}

func (tl *till) key(i int) string { return fmt.Sprintf("money-%d-%d", tl.seed, i) }

// run asks for every step, retrying none within the run: a step that gets
// no answer (the daemon died) ends it. A step already answered is asked
// again all the same, with its key, as a till that lost its screen
// would; its answer must be the first one. It returns an error only for
// an answer posgate must never give (a 500, an error without a code).
func (tl *till) run(c *client) (dead bool, err error) {
	for i, st := range tl.steps {
		var (
			path string
			body []byte
		)
		switch st.kind {
		case "sale":
			path = "/v1/payments"
			body = fmt.Appendf(nil, `{"type":"sale","terminal_id":"t1","amount":%d,"currency":"EUR","reference":%q}`, st.amount, tl.key(i))
		case "refund", "reversal":
			orig, ok := tl.acked[st.of]
			if !ok || orig.Status != "completed" || orig.Reversal != nil {
				continue // nothing to credit: a till credits only a sale it saw charged and not voided
			}
			path = "/v1/payments"
			if st.kind == "refund" {
				body = fmt.Appendf(nil, `{"type":"refund","terminal_id":"t1","amount":%d,"currency":"EUR","reference":%q,"original_payment_id":%q}`,
					st.amount, tl.key(i), orig.ID)
			} else {
				body = fmt.Appendf(nil, `{"type":"reversal","terminal_id":"t1","reference":%q,"original_payment_id":%q}`, tl.key(i), orig.ID)
			}
		case "x", "z":
			path = "/v1/printers/p1/reports/" + st.kind
		case "cash":
			path = "/v1/printers/p1/cash"
			body = fmt.Appendf(nil, `{"type":"in","amount":%d}`, st.amount)
		}
		a, err := c.send("POST", path, tl.key(i), body)
		if err != nil {
			return true, nil
		}
		switch {
		case a.status/100 == 2:
		case a.status == http.StatusInternalServerError || a.code == "" || a.code == "INTERNAL":
			return false, fmt.Errorf("%s: %d %s", st.name, a.status, a.body)
		default:
			tl.refused[st.name] = fmt.Sprintf("%d %s", a.status, a.code)
			continue
		}
		delete(tl.refused, st.name)
		if path != "/v1/payments" {
			if prev, ok := tl.printed[st.name]; ok && !bytes.Equal(prev, a.body) {
				return false, fmt.Errorf("%s answered %s, first %s", st.name, a.body, prev)
			}
			tl.printed[st.name] = a.body
			continue
		}
		var p payment
		if err := jsonInto(a.body, &p); err != nil {
			return false, fmt.Errorf("%s: %v: %s", st.name, err, a.body)
		}
		tl.payments[st.name] = p.ID
		p, err = waitPayment(c, p.ID, moneyPaymentWait)
		if errors.Is(err, errNoAnswer) {
			return true, nil // the daemon died while the till waited
		}
		if err != nil {
			return false, fmt.Errorf("%s: %v", st.name, err)
		}
		tl.acked[st.name] = p
	}
	return false, nil
}

// moneyResult is what one money run saw.
type moneyResult struct {
	ops                                            int64 // filesystem ops of the scenario (calibration)
	frames                                         []zvtFrame
	cut                                            bool
	acked                                          int
	lost, doubleCharges, overCredits, doublePrints int
	refused                                        map[string]string // step -> status and code of a refusal
	failure                                        string
}

// TestPowerCutMoney runs the real daemon with a ZVT terminal and a fiscal
// printer, each on its own power in the test process, cuts the power at a
// seeded filesystem operation of a till's day (two sales, a refund, a
// reversal, X report, cash in, Z report), and restarts it on what
// survived; the till then asks for everything again with the same keys.
// Two seeds in three cut at a step of a ZVT transaction found in the
// calibration run (the request on the line, the 04 0F Status-Information
// before and after it is persisted and acknowledged, a receipt line, the
// 06 0F completion), the third anywhere. Every fourth seed also runs the
// printer out of paper part-way; the paper is back after the restart.
//
// After every cut and restart, held against the terminal's journal and
// the printer's: no sale charged twice, no sale credited more than it
// was charged, no charge the box does not know as completed, no payment
// the till was shown settled lost or changed, no Z report or cash
// operation printed twice, and PRAGMA integrity_check ok. One summary
// line (SUMMARY powercut-money …) per run.
func TestPowerCutMoney(t *testing.T) {
	stopTestDeadline := requireFUSE(t)
	start := time.Now()
	pc := newPowerCut(t)
	calib := pc.money(t, 0, 0, 0, moneyScenario)
	if calib.failure != "" {
		t.Fatalf("calibration run without a cut: %s", calib.failure)
	}
	stopTestDeadline()
	var steps []int64 // op counts at the ZVT steps worth cutting at
	for _, f := range calib.frames {
		switch {
		case f.fromECR && f.class == 0x06 && (f.instr == 0x01 || f.instr == 0x31 || f.instr == 0x30), // the request
			!f.fromECR && f.class == 0x04 && f.instr == 0x0F, // Status-Information, before its persist
			!f.fromECR && f.class == 0x06 && f.instr == 0xD1, // a receipt line
			!f.fromECR && f.class == 0x06 && f.instr == 0x0F, // completion
			f.fromECR && f.class == 0x80 && f.ops > 0:        // an acknowledgement, after what it acknowledges persisted
			steps = append(steps, f.ops)
		}
	}
	t.Logf("calibration: %d filesystem ops, %d ZVT frames, %d cut points at ZVT steps", calib.ops, len(calib.frames), len(steps))
	var runs, cuts, acked, lost, doubles, over, prints, failed int
	for _, seed := range seeds(t, 200) {
		rng := rngFor(seed)
		k := 1 + rng.Int64N(calib.ops)
		what := fmt.Sprintf("loss %v, cut at op %d of ~%d", lossFor(seed), k, calib.ops)
		if seed%3 != 0 && len(steps) > 0 {
			k = steps[rng.IntN(len(steps))] + 1 + rng.Int64N(3)
			what = fmt.Sprintf("loss %v, cut at op %d of ~%d, at a ZVT step", lossFor(seed), k, calib.ops)
		}
		paper := 0
		if seed%4 == 1 {
			paper = 1 + rng.IntN(6)
			what += fmt.Sprintf(", paper out after %d printing commands", paper)
		}
		stop := deadline(t, seedDeadline, func() string {
			return fmt.Sprintf("seed %d (%s)\nrerun: POWERCUT_SEED=%d go test -run '^TestPowerCutMoney$' ./internal/powerfs", seed, what, seed)
		})
		res := pc.money(t, seed, k, paper, moneyScenario)
		stop()
		runs++
		if res.cut {
			cuts++
		}
		acked += res.acked
		lost += res.lost
		doubles += res.doubleCharges
		over += res.overCredits
		prints += res.doublePrints
		if res.failure != "" {
			failed++
			t.Errorf("seed %d (%s): %s\nrerun: POWERCUT_SEED=%d go test -run '^TestPowerCutMoney$' ./internal/powerfs", seed, what, res.failure, seed)
		}
	}
	fmt.Printf("SUMMARY powercut-money: runs=%d cuts=%d acked=%d lost=%d double_charges=%d over_credits=%d double_prints=%d failed=%d (%v)\n",
		runs, cuts, acked, lost, doubles, over, prints, failed, time.Since(start).Round(time.Second))
	if runs >= 10 && cuts < runs/2 {
		t.Errorf("the cut came in only %d of %d runs", cuts, runs)
	}
}

// money is one run: a clone of the disk, a new terminal and printer, the
// till's day (steps) with the power cut at op k (0: no cut), a restart on what
// survived, the till's retries, and the checks. paper > 0 runs the
// printer out of paper after that many printing commands.
func (pc *powerCut) money(t *testing.T, seed uint64, k int64, paper int, steps []moneyStep) (res moneyResult) {
	t.Helper()
	fatal := func(err error) {
		t.Helper()
		t.Fatalf("seed %d: %v\nrerun: POWERCUT_SEED=%d go test -run '^TestPowerCutMoney$' ./internal/powerfs", seed, err, seed)
	}
	term := newTillTerminal(t)
	defer term.stop()
	prn := newTillPrinter(t)
	defer prn.stop()
	pc.terminalAddr = term.addr
	defer func() { pc.terminalAddr = "" }()
	pc.writeConfig(t, prn.addr)
	fsys := pc.disk.Clone()
	if err := fsys.Mount(pc.mnt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fsys.Unmount() })
	var kl killer
	d, err := startDaemon(pc.bin, pc.cfg, &kl)
	if err != nil {
		fatal(err)
	}
	t.Cleanup(d.kill)
	c := &client{http: &http.Client{Timeout: 30 * time.Second}, url: d.url, apiKey: pc.apiKey}
	if err := waitTerminal(c, "t1", moneyTerminalWait); err != nil {
		fatal(fmt.Errorf("%v\n%s", err, d.stderr.tail(2000)))
	}
	base := fsys.Ops()
	term.setOps(func() int64 { return fsys.Ops() - base })
	if paper > 0 {
		prn.sim.PaperOutAfter(paper)
	}
	if k > 0 {
		fsys.ArmCut(k, kl.kill)
	}

	t0 := time.Now()
	tl := newTill(seed, steps)
	dead, err := tl.run(c)
	if os.Getenv("POWERCUT_TIMING") != "" {
		t.Logf("seed %d: day %v", seed, time.Since(t0))
		defer func(t1 time.Time) { t.Logf("seed %d: total %v", seed, time.Since(t1)) }(t0)
	}
	res.ops, res.frames, res.cut = fsys.Ops()-base, term.log(), fsys.IsCut()
	term.setOps(nil)
	if err != nil && !fsys.IsCut() {
		d.exit(2 * time.Second)
		fatal(fmt.Errorf("before any cut: %v\n%s", err, d.stderr.tail(2000)))
	}
	_ = dead
	ackedBefore := map[string]payment{}
	for name, p := range tl.acked {
		ackedBefore[name] = p
	}
	printedBefore := map[string][]byte{}
	for name, b := range tl.printed {
		printedBefore[name] = b
	}
	res.acked = len(ackedBefore) + len(printedBefore)

	// The power goes, the daemon with it; the terminal and the printer
	// stay on. The machine boots on what was durable, the paper is
	// reloaded, and the till asks for everything again.
	fsys.Cut()
	kl.kill()
	d.wait()
	if err := fsys.Unmount(); err != nil {
		fatal(err)
	}
	if err := fsys.Reset(lossFor(seed), rngFor(seed)); err != nil {
		fatal(err)
	}
	if err := fsys.Mount(pc.mnt); err != nil {
		fatal(err)
	}
	prn.sim.SetPaperOut(false)
	d, err = startDaemon(pc.bin, pc.cfg, nil)
	if err != nil {
		res.failure = "restart after the cut: " + err.Error()
		return res
	}
	t.Cleanup(d.kill)
	c.url = d.url
	var fail []string
	t1 := time.Now()
	err = waitTerminal(c, "t1", moneyTerminalWait)
	if os.Getenv("POWERCUT_TIMING") != "" {
		t.Logf("seed %d: terminal ready after the restart in %v", seed, time.Since(t1))
	}
	if err != nil {
		fail = append(fail, "after the restart: "+err.Error())
	} else if _, err := tl.run(c); err != nil {
		fail = append(fail, "the till's retries: "+err.Error())
	}
	res.refused = tl.refused
	f, known, counts := pc.checkMoney(c, tl, ackedBefore, printedBefore, term, prn)
	fail = append(fail, f...)
	for _, k := range known {
		t.Logf("seed %d: known issue (knownDoublePrints): %s\n%s", seed, k, prn.journal())
	}
	res.lost, res.doubleCharges, res.overCredits, res.doublePrints = counts[0], counts[1], counts[2], counts[3]
	if err := d.stop(); err != nil {
		fail = append(fail, err.Error())
	}
	if got := check(t, pc.db, ""); got.Integrity != "ok" {
		fail = append(fail, "integrity_check: "+got.Integrity)
	}
	if err := fsys.Unmount(); err != nil {
		fatal(err)
	}
	if len(fail) > 0 {
		var jb strings.Builder
		for _, e := range term.sim.Journal() {
			fmt.Fprintf(&jb, "  %s %d receipt %d trace %d approved %v reversed %v orig %d\n", e.Kind, e.Amount, e.ReceiptNo, e.Trace, e.Approved, e.Reversed, e.OrigReceipt)
		}
		res.failure = strings.Join(fail, "; ") + fmt.Sprintf("\ntill: acked %v, refused %v\nterminal journal:\n%sterminal line: %v\n%s\ndaemon log:\n%s",
			stepNames(tl.acked), tl.refused, jb.String(), term.log(), prn.journal(), d.stderr.tail(2500))
	}
	return res
}

func stepNames(m map[string]payment) []string {
	var out []string
	for name, p := range m {
		out = append(out, fmt.Sprintf("%s=%s/%s", name, p.Status, p.Resolution))
	}
	return out
}

// checkMoney holds the box, the terminal's journal and the printer's
// journal against each other and against what the till was shown. counts
// are lost, double charges, over-credits and double prints.
func (pc *powerCut) checkMoney(c *client, tl *till, acked map[string]payment, printed map[string][]byte,
	term *tillTerminal, prn *tillPrinter) (fail, known []string, counts [4]int) {
	pays, err := listAll[payment](c, "/v1/payments?limit=200")
	if err != nil {
		return []string{"list payments: " + err.Error()}, nil, counts
	}
	byID := map[string]payment{}
	for _, p := range pays {
		byID[p.ID] = p
	}
	// Nothing the till was shown is lost or changed.
	for name, a := range acked {
		p, ok := byID[a.ID]
		switch {
		case !ok:
			counts[0]++
			fail = append(fail, fmt.Sprintf("%s (%s, %s) was shown settled and is gone", name, a.ID, a.Status))
		case p.Status != a.Status:
			counts[0]++
			fail = append(fail, fmt.Sprintf("%s (%s) was shown %s and is now %s", name, a.ID, a.Status, p.Status))
		}
	}
	for name, body := range printed {
		i := tl.stepIndex(name)
		st := tl.steps[i]
		path := "/v1/printers/p1/cash"
		var req []byte
		if st.kind == "cash" {
			req = fmt.Appendf(nil, `{"type":"in","amount":%d}`, st.amount)
		} else {
			path = "/v1/printers/p1/reports/" + st.kind
		}
		a, err := c.send("POST", path, tl.key(i), req)
		if err != nil || a.status/100 != 2 || !bytes.Equal(a.body, body) {
			counts[0]++
			fail = append(fail, fmt.Sprintf("%s was answered %s before the cut; its replay: %d %s %v", name, body, a.status, a.body, err))
		}
	}

	// The terminal's journal is the money. Each sale is charged at most
	// once, every charge is a completed sale on the box, and no sale is
	// credited (refunds and its reversal) more than it was charged.
	journal := term.sim.Journal()
	sales := map[int64][]terminal.Entry{} // amount -> approved sales
	credits := map[int]int64{}            // sale receipt -> credited
	for _, e := range journal {
		if e.Approved && e.Kind == terminal.Sale {
			sales[e.Amount] = append(sales[e.Amount], e)
		}
	}
	completedSale := map[int]payment{} // receipt -> sale the box knows as charged
	for _, p := range pays {
		if p.Type == "sale" && recorded(p) {
			completedSale[p.ReceiptNumber] = p
		}
	}
	for amount, es := range sales {
		charged := 0
		for _, e := range es {
			if !e.Reversed {
				charged++
			}
		}
		if charged > 1 {
			counts[1]++
			fail = append(fail, fmt.Sprintf("the sale of %d is charged %d times on the terminal", amount, charged))
		}
		for _, e := range es {
			if !e.Reversed {
				if _, ok := completedSale[e.ReceiptNo]; !ok {
					counts[0]++
					fail = append(fail, fmt.Sprintf("the terminal charged %d (receipt %d) but the box knows no such charge", amount, e.ReceiptNo))
				}
			}
		}
	}
	saleOf := map[string]payment{} // payment id -> its sale, for refunds
	for _, p := range pays {
		saleOf[p.ID] = p
	}
	var refunds int64
	for _, e := range journal {
		if !e.Approved {
			continue
		}
		switch e.Kind {
		case terminal.Reversal:
			for _, s := range journal {
				if s.Kind == terminal.Sale && s.ReceiptNo == e.OrigReceipt {
					credits[s.ReceiptNo] += s.Amount
				}
			}
		case terminal.Refund:
			refunds += e.Amount
		}
	}
	// ZVT refunds carry no link to their sale; the box does. Every
	// approved refund on the terminal must be a refund the box knows as
	// made: completed, or held for a person (needs_review, with the
	// terminal's record), and is credited to the sale the box links it to.
	boxRefunds := map[int64][]payment{}
	for _, p := range pays {
		if p.Type == "refund" && recorded(p) {
			boxRefunds[p.Amount] = append(boxRefunds[p.Amount], p)
		}
	}
	for _, e := range journal {
		if !e.Approved || e.Kind != terminal.Refund {
			continue
		}
		rs := boxRefunds[e.Amount]
		if len(rs) == 0 {
			counts[2]++
			fail = append(fail, fmt.Sprintf("the terminal refunded %d (receipt %d), which the box knows as no refund made", e.Amount, e.ReceiptNo))
			continue
		}
		boxRefunds[e.Amount] = rs[1:]
		if s, ok := saleOf[rs[0].OriginalPaymentID]; ok {
			credits[s.ReceiptNumber] += e.Amount
		}
	}
	for _, es := range sales {
		for _, e := range es {
			if credits[e.ReceiptNo] > e.Amount {
				counts[2]++
				fail = append(fail, fmt.Sprintf("the sale of %d (receipt %d) is credited %d", e.Amount, e.ReceiptNo, credits[e.ReceiptNo]))
			}
		}
	}

	// The printer: at most one Z report and one cash-in for the day.
	n := map[printer.DocKind]int{}
	for _, doc := range prn.sim.Journal() {
		if !doc.Cancelled {
			n[doc.Kind]++
		}
	}
	for _, kind := range []printer.DocKind{printer.KindZReport, printer.KindCashIn} {
		if n[kind] > 1 {
			counts[3]++
			msg := fmt.Sprintf("the printer printed %d %s documents for one request", n[kind], kind)
			if knownDoublePrints && os.Getenv("POWERCUT_STRICT") != "1" {
				known = append(known, msg)
				continue
			}
			fail = append(fail, msg)
		}
	}
	return fail, known, counts
}

// knownDoublePrints was the gap this test found in issue 11: the X/Z
// report and cash routes sent the command to the printer before anything
// durable said so. fiscal.PrinterOps now records each operation with the
// printer's counters before sending it and asks the printer on a retry, so
// a double print fails the test. (POWERCUT_STRICT=1 is kept as a no-op.)
const knownDoublePrints = false

// recorded reports whether the box records p as having moved money, or as
// held for a person with the terminal's record: completed, or resolved
// needs_review.
func recorded(p payment) bool {
	return p.Status == "completed" || p.Resolution == "needs_review"
}

func (tl *till) stepIndex(name string) int {
	for i, st := range tl.steps {
		if st.name == name {
			return i
		}
	}
	panic("no step " + name)
}

// TestMoneyCheckHasTeeth: the checks see an over-credit. A till that
// refunds part of a sale and then reverses the whole of it asks for more
// credit than the charge; posgate must refuse the second (409), or the
// checks must count the over-credit. Either way this test cannot pass
// with a checker that misses it.
func TestMoneyCheckHasTeeth(t *testing.T) {
	requireFUSE(t)
	pc := newPowerCut(t)
	res := pc.money(t, 9000, 0, 0, []moneyStep{
		{name: "sale A", kind: "sale", amount: 2000},
		{name: "refund A", kind: "refund", amount: 500, of: "sale A"},
		{name: "reversal A", kind: "reversal", of: "sale A"},
	})
	switch {
	case res.overCredits == 1 && strings.Contains(res.failure, "credited 2500"):
		t.Logf("posgate let the till credit 25.00 on a 20.00 sale; the checks counted it")
	case res.overCredits == 0 && res.failure == "":
		if !strings.Contains(fmt.Sprint(res.refused), "reversal A:409") {
			t.Fatalf("no over-credit counted, and the reversal was not refused: refused %v", res.refused)
		}
	default:
		t.Fatalf("over-credits %d, failure: %s", res.overCredits, res.failure)
	}
}
