package fiscal_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
)

// slipFake is a receipt printer: it keeps what it printed by document ID,
// as a driver with a ledger does, and fails while fail is set.
type slipFake struct {
	mu      sync.Mutex
	fail    error
	docs    []device.Receipt
	printed map[string]bool
}

func (f *slipFake) PrintReceipt(_ context.Context, r device.Receipt) (device.ReceiptResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return device.ReceiptResult{}, f.fail
	}
	if f.printed[r.ID] {
		return device.ReceiptResult{ID: r.ID, Recovered: true, Time: time.Now()}, nil
	}
	f.printed[r.ID] = true
	f.docs = append(f.docs, r)
	return device.ReceiptResult{ID: r.ID, Time: time.Now()}, nil
}

func (f *slipFake) PrintSlip(context.Context, device.Slip) (device.SlipResult, error) {
	return device.SlipResult{}, errors.New("not used")
}

// fiscalFake is a fiscal printer: no PrintSlip.
type fiscalFake struct{ slipFake }

func (f *fiscalFake) PrintSlip() {}

var reprintSale = fiscal.NewInvoice{Type: "sale", Items: []fiscal.NewItem{{Name: "Tea", Quantity: "1", UnitPrice: 300, VATRate: "21"}},
	Payments: []fiscal.NewPayment{{Type: "cash", Amount: 300}}}

func jobsOn(t *testing.T, e *env, p device.ReceiptPrinter) *fiscal.PrintJobs {
	return fiscal.NewPrintJobs(e.db, fiscal.PrintJobsOptions{Printer: p, PrinterID: "p1", Now: e.clk.Now,
		Receipt: fiscal.ReceiptOptions{VATGroups: map[int64]int{2100: 1, 950: 2, 0: 3}}, Log: zerolog.New(zerolog.NewTestWriter(t))})
}

// A copy of a printed receipt is marked at head and foot, carries the
// IIC and QR like the original, prints once per key, and fires
// receipt.reprinted once per copy.
func TestReprintMarkedCopy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := newEnv(t, "p1")
	p := &slipFake{printed: map[string]bool{}}
	jobs := jobsOn(t, e, p)
	inv, err := e.inv.Create(ctx, reprintSale, e.caller("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Reprint(ctx, inv.ID, "k1"); !errors.Is(err, fiscal.ErrNotPrinted) {
		t.Fatalf("copy of an unprinted receipt: %v", err)
	}
	runOnce(t, jobs)
	c1, err := jobs.Reprint(ctx, inv.ID, "k1")
	if err != nil || c1.Recovered {
		t.Fatalf("reprint: %+v %v", c1, err)
	}
	again, err := jobs.Reprint(ctx, inv.ID, "k1")
	if err != nil || again.CopyID != c1.CopyID || !again.Recovered {
		t.Fatalf("same key again: %+v %v", again, err)
	}
	c2, err := jobs.Reprint(ctx, inv.ID, "k2")
	if err != nil || c2.CopyID == c1.CopyID {
		t.Fatalf("second key: %+v %v", c2, err)
	}
	if len(p.docs) != 3 {
		t.Fatalf("%d documents printed, want the original and two copies", len(p.docs))
	}
	cp := p.docs[1]
	if cp.ID != c1.CopyID || len(cp.Lines) == 0 || cp.Lines[0].Comment != fiscal.CopyMark {
		t.Errorf("copy %q does not start with the mark: %+v", cp.ID, cp.Lines)
	}
	if cp.QR != inv.Signature.VerifyURL || fmt.Sprint(cp.Footer) != fmt.Sprint(p.docs[0].Footer) {
		t.Errorf("copy footer %q QR %q, original %q", cp.Footer, cp.QR, p.docs[0].Footer)
	}
	if ev := events(t, e.db, fiscal.EventReceiptReprinted); len(ev) != 2 || ev[0]["copy_id"] != c1.CopyID {
		t.Errorf("receipt.reprinted: %v", ev)
	}
	if ev := events(t, e.db, fiscal.EventReceiptPrinted); len(ev) != 1 {
		t.Errorf("%d receipt.printed, want 1 (copies are not receipts)", len(ev))
	}
}

// A fiscal printer would fiscalize a copy as a second sale: refused.
func TestReprintRefusedOnFiscalPrinter(t *testing.T) {
	e := newEnv(t, "p1")
	jobs := jobsOn(t, e, &fiscalFake{slipFake{printed: map[string]bool{}}})
	inv, err := e.inv.Create(context.Background(), reprintSale, e.caller("r2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Reprint(context.Background(), inv.ID, "k"); !errors.Is(err, fiscal.ErrCopyOnFiscalPrinter) {
		t.Fatalf("err %v, want ErrCopyOnFiscalPrinter", err)
	}
}

// A dead print job is requeued by hand: pending with a fresh budget,
// print_job.requeued, then printed once. A pending job is left alone and
// a printed one refused.
func TestRequeueDeadJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := newEnv(t, "p1")
	p := &slipFake{printed: map[string]bool{}, fail: fmt.Errorf("print: %w", device.ErrPrintUncertain)}
	jobs := jobsOn(t, e, p)
	inv, err := e.inv.Create(ctx, reprintSale, e.caller("r3"))
	if err != nil {
		t.Fatal(err)
	}
	runOnce(t, jobs)
	if got, _ := e.inv.Get(ctx, inv.ID); got.Print.State != fiscal.PrintDead {
		t.Fatalf("state %q, want dead", got.Print.State)
	}
	if _, err := jobs.Reprint(ctx, inv.ID, "k"); !errors.Is(err, fiscal.ErrNotPrinted) {
		t.Fatalf("copy of a dead job: %v", err)
	}
	p.mu.Lock()
	p.fail = nil
	p.mu.Unlock()
	st, requeued, err := jobs.Requeue(ctx, inv.ID)
	if err != nil || !requeued || st.State != fiscal.PrintPending || st.Attempts != 0 {
		t.Fatalf("requeue: %+v %v %v", st, requeued, err)
	}
	if _, requeued, err := jobs.Requeue(ctx, inv.ID); err != nil || requeued {
		t.Fatalf("requeue of a pending job: %v %v", requeued, err)
	}
	if ev := events(t, e.db, fiscal.EventPrintJobRequeued); len(ev) != 1 || ev[0]["invoice_id"] != inv.ID {
		t.Fatalf("print_job.requeued: %v", ev)
	}
	runOnce(t, jobs)
	if len(p.docs) != 1 {
		t.Fatalf("%d documents, want 1", len(p.docs))
	}
	if _, _, err := jobs.Requeue(ctx, inv.ID); !errors.Is(err, fiscal.ErrPrintedAlready) {
		t.Fatalf("requeue of a printed job: %v", err)
	}
	if _, _, err := jobs.Requeue(ctx, "inv_nope"); !errors.Is(err, fiscal.ErrPrintJobNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}
