package fiscal_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/simulator/printer"
	"github.com/posgate/posgate/store"
)

// simPrinter serves a simulated Datecs printer on a loopback port until
// the test ends and returns its tcp:// spec.
func simPrinter(t *testing.T, opts printer.Options) (*printer.Printer, string) {
	t.Helper()
	if opts.VATRates == nil {
		rates := [8]int64{2100, 950, 0}
		opts.VATRates = &rates
	}
	sim := printer.New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sim.ServeListener(ctx, ln); err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return sim, "tcp://" + ln.Addr().String()
}

// connectDriver opens the Datecs driver with fiscal's ledger on db.
func connectDriver(t *testing.T, spec string, db *store.DB) *datecs.Printer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := datecs.Open(ctx, spec, datecs.Options{
		Timeout: 150 * time.Millisecond, Resends: 2, Ledger: fiscal.NewLedger(db),
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
	})
	if err != nil {
		t.Fatalf("open driver: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func newJobs(t *testing.T, db *store.DB, rp device.ReceiptPrinter, now func() time.Time) *fiscal.PrintJobs {
	return fiscal.NewPrintJobs(db, fiscal.PrintJobsOptions{
		Printer: rp, PrinterID: "p1", Now: now,
		Receipt: fiscal.ReceiptOptions{VATGroups: map[int64]int{2100: 1, 950: 2, 0: 3}},
		Log:     zerolog.New(zerolog.NewTestWriter(t)),
	})
}

func runOnce(t *testing.T, jobs *fiscal.PrintJobs) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	did, err := jobs.RunOnce(ctx)
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return did
}

func TestPrintJobOnSimulator(t *testing.T) {
	sim, spec := simPrinter(t, printer.Options{})
	e := newEnv(t, "p1")
	ctx := context.Background()
	inv, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "sale",
		Items: []fiscal.NewItem{
			{Name: "Cheese", Quantity: "1.5", UnitPrice: 1999, VATRate: "21", Discount: 100},
			{Name: "Milk", Quantity: "2", UnitPrice: 110, VATRate: "9.5"}},
		Payments: []fiscal.NewPayment{{Type: "card", Amount: 2000, PaymentID: "pay_1"}, {Type: "cash", Amount: 2000}}}, e.caller("p"))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Print == nil || inv.Print.State != fiscal.PrintPending {
		t.Fatalf("Print=%+v, want a pending job", inv.Print)
	}
	jobs := newJobs(t, e.db, connectDriver(t, spec, e.db), e.clk.Now)
	if !runOnce(t, jobs) {
		t.Fatal("no job ran")
	}
	if runOnce(t, jobs) {
		t.Fatal("a second job ran")
	}
	receipts := sim.Receipts()
	if len(receipts) != 1 {
		t.Fatalf("%d receipts printed, want 1", len(receipts))
	}
	r := receipts[0]
	if r.Total != inv.Totals.Total {
		t.Fatalf("printer total %d, invoice total %d", r.Total, inv.Totals.Total)
	}
	text := strings.Join(r.Comments, "\n")
	if !strings.Contains(text, "IIC "+inv.Signature.Code) || !strings.Contains(strings.ReplaceAll(text, "\n", ""), inv.Signature.VerifyURL) {
		t.Fatalf("comments %q lack the IIC and the URL", r.Comments)
	}
	got, err := e.inv.Get(ctx, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Print; p == nil || p.State != fiscal.PrintPrinted || p.ReceiptNumber != r.Number || p.FiscalMemory == "" || p.Attempts != 1 {
		t.Fatalf("Print=%+v, want printed as receipt %d with the fiscal memory serial", p, r.Number)
	}
	pe := events(t, e.db, fiscal.EventReceiptPrinted)
	if len(pe) != 1 || pe[0]["receipt_number"] != float64(r.Number) || pe[0]["fiscal_memory_serial"] == "" {
		t.Fatalf("receipt.printed=%v", pe)
	}
	ce := events(t, e.db, fiscal.EventCompleted)
	if len(ce) != 1 || ce[0]["id"] != inv.ID || ce[0]["print"].(map[string]any)["state"] != "printed" {
		t.Fatalf("fiscalization.completed=%v", ce)
	}
}

// TestCrashBetweenCommitAndPrint kills the print path at the worst
// moments (before anything is sent; after the printer closed the receipt
// but before anyone recorded it), reopens the store from its file with a
// new driver and runner, and checks the invoice is printed exactly once.
func TestCrashBetweenCommitAndPrint(t *testing.T) {
	for _, tc := range []struct {
		name       string
		crashAfter bool // crash once the printer has closed the receipt
	}{
		{"BeforePrint", false},
		{"AfterPrinterClosed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				armed  atomic.Bool
				crash  context.CancelFunc
				crashM sync.Mutex
			)
			sim, spec := simPrinter(t, printer.Options{OnDocument: func(d printer.Document) {
				if d.Kind == printer.KindFiscal && !d.Cancelled && armed.Load() {
					crashM.Lock()
					crash()
					crashM.Unlock()
				}
			}})
			dir := t.TempDir()
			path := filepath.Join(dir, "posgate.db")
			db, err := store.Open(context.Background(), path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			e := newEnvOn(t, db, "p1")
			inv, err := e.inv.Create(context.Background(), sale(1234), e.caller("crash"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.crashAfter {
				// The first life prints until the printer has closed the
				// receipt, then dies: nothing after that point runs.
				drv := connectDriver(t, spec, db)
				jobs := newJobs(t, db, drv, e.clk.Now)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				crashM.Lock()
				crash = cancel
				crashM.Unlock()
				armed.Store(true)
				_, err := jobs.RunOnce(ctx)
				cancel()
				armed.Store(false)
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Fatalf("first life: %v", err)
				}
				drv.Close()
				if n := len(sim.Receipts()); n != 1 {
					t.Fatalf("first life printed %d receipts, want 1", n)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			// Restart: the store from its file, a new driver, a new runner.
			db2, err := store.Open(context.Background(), path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db2.Close() })
			var state string
			if err := db2.Read.QueryRow("SELECT state FROM print_jobs WHERE invoice_id = ?", inv.ID).Scan(&state); err != nil || state != fiscal.PrintPending {
				t.Fatalf("job after the crash: %q (%v), want pending", state, err)
			}
			jobs := newJobs(t, db2, connectDriver(t, spec, db2), e.clk.Now)
			for runOnce(t, jobs) {
			}
			receipts := sim.Receipts()
			if len(receipts) != 1 || receipts[0].Total != 1234 {
				t.Fatalf("receipts=%+v, want exactly one of 12.34", receipts)
			}
			if err := db2.Read.QueryRow("SELECT state FROM print_jobs WHERE invoice_id = ?", inv.ID).Scan(&state); err != nil || state != fiscal.PrintPrinted {
				t.Fatalf("job after restart: %q (%v), want printed", state, err)
			}
			if n := len(events(t, db2, fiscal.EventReceiptPrinted)); n != 1 {
				t.Fatalf("%d receipt.printed events, want 1", n)
			}
		})
	}
}

func TestPrintJobRetryWhileNotReady(t *testing.T) {
	sim, spec := simPrinter(t, printer.Options{})
	e := newEnv(t, "p1") // 3 attempts per job
	ctx := context.Background()
	jobs := newJobs(t, e.db, connectDriver(t, spec, e.db), e.clk.Now)

	sim.SetPaperOut(true)
	a, err := e.inv.Create(ctx, sale(500), e.caller("a"))
	if err != nil {
		t.Fatal(err)
	}
	if !runOnce(t, jobs) {
		t.Fatal("no job ran")
	}
	if runOnce(t, jobs) {
		t.Fatal("a job ran again before its retry time")
	}
	// Out of paper for longer than the attempts would last: the job
	// waits, it does not die.
	for range 5 {
		e.clk.t = e.clk.t.Add(time.Hour)
		if !runOnce(t, jobs) {
			t.Fatal("the retry did not run")
		}
	}
	retry := events(t, e.db, fiscal.EventReceiptRetry)
	if len(retry) != 6 || !strings.Contains(retry[0]["error"].(string), "paper") {
		t.Fatalf("receipt.retry=%v, want 6 about paper", retry)
	}
	if got, _ := e.inv.Get(ctx, a.ID); got.Print.State != fiscal.PrintPending || got.Print.Attempts != 0 || !strings.Contains(got.Print.LastError, "paper") {
		t.Fatalf("while out of paper: %+v, want pending with no attempt spent", got.Print)
	}
	sim.SetPaperOut(false)
	e.clk.t = e.clk.t.Add(time.Hour)
	if !runOnce(t, jobs) {
		t.Fatal("the retry did not run")
	}
	if got, _ := e.inv.Get(ctx, a.ID); got.Print.State != fiscal.PrintPrinted || got.Print.Attempts != 1 {
		t.Fatalf("after paper is back: %+v, want printed", got.Print)
	}
	if n := len(sim.Receipts()); n != 1 {
		t.Fatalf("%d receipts, want 1", n)
	}
}

// refusingPrinter is a ReceiptPrinter that fails every document with err.
type refusingPrinter struct {
	err   error
	calls atomic.Int32
}

func (p *refusingPrinter) PrintReceipt(context.Context, device.Receipt) (device.ReceiptResult, error) {
	p.calls.Add(1)
	return device.ReceiptResult{}, p.err
}

func TestPrintJobDeadLetter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		tries int
	}{
		{"Refused", &device.PrinterError{Command: 0x31, Code: -111016, Kinds: []error{device.ErrPrinterRejected}}, 3},
		{"FiscalMemoryFull", &device.PrinterError{Command: 0x30, Kinds: []error{device.ErrPrinterRejected, device.ErrFiscalMemoryFull}}, 3},
		{"Uncertain", device.ErrPrintUncertain, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "p1") // 3 attempts per job
			ctx := context.Background()
			rp := &refusingPrinter{err: tc.err}
			jobs := newJobs(t, e.db, rp, e.clk.Now)
			inv, err := e.inv.Create(ctx, sale(700), e.caller("b"))
			if err != nil {
				t.Fatal(err)
			}
			for range 10 {
				e.clk.t = e.clk.t.Add(time.Hour)
				runOnce(t, jobs)
			}
			if got := int(rp.calls.Load()); got != tc.tries {
				t.Fatalf("%d tries, want %d", got, tc.tries)
			}
			got, _ := e.inv.Get(ctx, inv.ID)
			if got.Print.State != fiscal.PrintDead || got.Print.Attempts != tc.tries || got.Print.LastError == "" {
				t.Fatalf("Print=%+v, want dead after %d attempts with the error", got.Print, tc.tries)
			}
			if n := len(events(t, e.db, fiscal.EventReceiptError)); n != tc.tries {
				t.Fatalf("%d receipt.error events, want %d", n, tc.tries)
			}
			dead := events(t, e.db, fiscal.EventDeadLetter)
			if len(dead) != 1 || dead[0]["id"] != inv.ID || dead[0]["print"].(map[string]any)["state"] != "dead" {
				t.Fatalf("fiscalization.dead_letter=%v", dead)
			}
		})
	}
}

// TestRunWakes checks Run prints a new invoice at once when woken, and
// returns nil when its context ends.
func TestRunWakes(t *testing.T) {
	sim, spec := simPrinter(t, printer.Options{})
	e := newEnv(t, "p1")
	jobs := fiscal.NewPrintJobs(e.db, fiscal.PrintJobsOptions{Printer: connectDriver(t, spec, e.db), PrinterID: "p1",
		Receipt: fiscal.ReceiptOptions{VATGroups: map[int64]int{2100: 1}}, Poll: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- jobs.Run(ctx) }()
	if _, err := e.inv.Create(ctx, sale(100), e.caller("w")); err != nil {
		t.Fatal(err)
	}
	jobs.Wake()
	deadline := time.Now().Add(10 * time.Second)
	for len(sim.Receipts()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run=%v, want nil", err)
	}
	if n := len(sim.Receipts()); n != 1 {
		t.Fatalf("%d receipts, want 1", n)
	}
}

// TestPrintJobOffline: a printer whose line is gone is waited for, not
// counted against the job.
func TestPrintJobOffline(t *testing.T) {
	_, spec := simPrinter(t, printer.Options{})
	e := newEnv(t, "p1")
	drv := connectDriver(t, spec, e.db)
	drv.Close()
	jobs := newJobs(t, e.db, drv, e.clk.Now)
	inv, err := e.inv.Create(context.Background(), sale(300), e.caller("off"))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		e.clk.t = e.clk.t.Add(time.Hour)
		runOnce(t, jobs)
	}
	got, _ := e.inv.Get(context.Background(), inv.ID)
	if got.Print.State != fiscal.PrintPending || got.Print.Attempts != 0 {
		t.Fatalf("Print=%+v (events retry %d, error %d), want pending with no attempt spent", got.Print,
			len(events(t, e.db, fiscal.EventReceiptRetry)), len(events(t, e.db, fiscal.EventReceiptError)))
	}
}

// TestStornoOnSimulator prints a refund and a void as storno receipts
// quoting the sale's printed receipt; a refund of a sale not printed yet
// waits for it.
func TestStornoOnSimulator(t *testing.T) {
	sim, spec := simPrinter(t, printer.Options{})
	e := newEnv(t, "p1")
	ctx := context.Background()
	jobs := newJobs(t, e.db, connectDriver(t, spec, e.db), e.clk.Now)
	s1, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "sale",
		Items:    []fiscal.NewItem{{Name: "A", Quantity: "2", UnitPrice: 500, VATRate: "21"}},
		Payments: []fiscal.NewPayment{{Type: "cash", Amount: 1000}}}, e.caller("s1"))
	if err != nil {
		t.Fatal(err)
	}
	// The refund is created before the sale is printed: its job waits.
	r, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "refund", OriginalInvoiceID: s1.ID,
		Items:    []fiscal.NewItem{{Name: "A", Quantity: "1", UnitPrice: 500, VATRate: "21"}},
		Payments: []fiscal.NewPayment{{Type: "cash", Amount: 500}}}, e.caller("r1"))
	if err != nil {
		t.Fatal(err)
	}
	// Make the refund's job due first.
	if _, err := e.db.Write.Exec("UPDATE print_jobs SET next_attempt_at = 0 WHERE invoice_id = ?", r.ID); err != nil {
		t.Fatal(err)
	}
	runOnce(t, jobs) // the refund: waits for its sale
	if got, _ := e.inv.Get(ctx, r.ID); got.Print.State != fiscal.PrintPending || got.Print.Attempts != 0 {
		t.Fatalf("refund before its sale is printed: %+v, want waiting", got.Print)
	}
	for range 5 {
		e.clk.t = e.clk.t.Add(time.Hour)
		runOnce(t, jobs)
	}
	s2, err := e.inv.Create(ctx, sale(750), e.caller("s2"))
	if err != nil {
		t.Fatal(err)
	}
	runOnce(t, jobs)
	v, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "void", OriginalInvoiceID: s2.ID}, e.caller("v2"))
	if err != nil {
		t.Fatal(err)
	}
	for runOnce(t, jobs) {
	}
	docs := sim.Receipts()
	if len(docs) != 4 {
		t.Fatalf("%d receipts, want 4: %+v", len(docs), docs)
	}
	want := []struct {
		kind  printer.DocKind
		total int64
		id    string
	}{{printer.KindFiscal, 1000, s1.ID}, {printer.KindStorno, 500, r.ID}, {printer.KindFiscal, 750, s2.ID}, {printer.KindStorno, 750, v.ID}}
	for i, w := range want {
		if docs[i].Kind != w.kind || docs[i].Total != w.total {
			t.Fatalf("receipt %d: %s %d, want %s %d", i, docs[i].Kind, docs[i].Total, w.kind, w.total)
		}
		got, _ := e.inv.Get(ctx, w.id)
		if got.Print.State != fiscal.PrintPrinted || got.Print.ReceiptNumber != docs[i].Number {
			t.Fatalf("invoice %s: %+v, want printed as %d", w.id, got.Print, docs[i].Number)
		}
	}
}

// A job whose receipt is left open on the printer (paper ran out in the
// middle of it) is finished before any other job runs: another job would
// otherwise clear that receipt and print its own, and the first job's
// retry could then no longer tell what became of its document and go
// dead although nothing went wrong. Found by the power-cut test.
func TestInterruptedJobGoesFirst(t *testing.T) {
	sim, spec := simPrinter(t, printer.Options{})
	e := newEnv(t, "p1")
	ctx := context.Background()
	jobs := newJobs(t, e.db, connectDriver(t, spec, e.db), e.clk.Now)

	a, err := e.inv.Create(ctx, sale(500), e.caller("first"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.inv.Create(ctx, sale(700), e.caller("second"))
	if err != nil {
		t.Fatal(err)
	}
	sim.PaperOutAfter(2) // the first receipt opens, then the paper runs out
	if !runOnce(t, jobs) {
		t.Fatal("no job ran")
	}
	if !sim.Counters().ReceiptOpen {
		t.Fatal("the first receipt is not left open; the test does not test what it says")
	}
	sim.SetPaperOut(false)
	// The second job is due, but the first has a receipt open: nothing runs.
	if runOnce(t, jobs) {
		t.Fatal("another job ran while the first one's receipt was open")
	}
	for range 2 {
		e.clk.t = e.clk.t.Add(time.Hour)
		if !runOnce(t, jobs) {
			t.Fatal("no job ran")
		}
	}
	for _, id := range []string{a.ID, b.ID} {
		got, _ := e.inv.Get(ctx, id)
		if got.Print.State != fiscal.PrintPrinted {
			t.Fatalf("invoice %s: %+v, want printed", id, got.Print)
		}
	}
	var closed []int64
	for _, r := range sim.Receipts() {
		if !r.Cancelled {
			closed = append(closed, r.Total)
		}
	}
	if len(closed) != 2 || closed[0] != 500 || closed[1] != 700 {
		t.Fatalf("closed receipts with totals %v, want [500 700] in order", closed)
	}
}
