package none_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/none"
	"github.com/posgate/posgate/store/storetest"
)

type printer struct {
	mu   sync.Mutex
	docs []device.Receipt
}

func (p *printer) PrintReceipt(_ context.Context, r device.Receipt) (device.ReceiptResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.docs = append(p.docs, r)
	return device.ReceiptResult{ID: r.ID, Time: time.Now()}, nil
}

// No fiscal duty: an invoice without any certificate, a receipt with its
// number and nothing signed, receipt.printed and never
// fiscalization.completed.
func TestNoFiscalDuty(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	db := storetest.Open(t)
	var (
		mu     sync.Mutex
		events []string
	)
	emit := func(_ context.Context, _ *sql.Tx, typ string, _ any) error {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, typ)
		return nil
	}
	p := &printer{}
	prof := none.Profile{}
	if r := prof.Requirements(); r.Certificate || r.Registration || r.PrinterRequired || prof.Scheme() != nil {
		t.Fatalf("requirements %+v", r)
	}
	invoices := fiscal.NewInvoices(db, fiscal.InvoicesOptions{Profile: prof, TIN: "1", BusinessUnit: "shop1", Device: "till1",
		Software: "posgate", PrinterID: "r1", EmitTx: emit})
	jobs := fiscal.NewPrintJobs(db, fiscal.PrintJobsOptions{Printer: p, PrinterID: "r1", Profile: prof, EmitTx: emit,
		Log: zerolog.New(zerolog.NewTestWriter(t))})
	inv, err := invoices.Create(ctx, fiscal.NewInvoice{Type: "sale",
		Items:    []fiscal.NewItem{{Name: "Kava", Quantity: "1", UnitPrice: 200, VATRate: "21"}},
		Payments: []fiscal.NewPayment{{Type: "cash", Amount: 200}}}, fiscal.Caller{KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Number != "shop1/1/"+inv.IssuedAt.Local().Format("2006")+"/till1" || inv.Signature != (fiscal.Signature{}) || inv.SaleNumber != "" {
		t.Errorf("invoice %s signed %+v sale number %q", inv.Number, inv.Signature, inv.SaleNumber)
	}
	if did, err := jobs.RunOnce(ctx); !did || err != nil {
		t.Fatalf("print: %v %v", did, err)
	}
	if len(p.docs) != 1 || len(p.docs[0].Footer) != 1 || p.docs[0].Footer[0] != "No "+inv.Number || p.docs[0].QR != "" {
		t.Fatalf("receipt %+v", p.docs)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{fiscal.EventInvoiceCreated, fiscal.EventReceiptPrinted}
	if len(events) != len(want) || events[0] != want[0] || events[1] != want[1] {
		t.Errorf("events %q, want %q", events, want)
	}
}
