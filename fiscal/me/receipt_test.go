package me_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
)

// recordingPrinter keeps the receipts it was asked to print.
type recordingPrinter struct {
	mu   sync.Mutex
	docs []device.Receipt
}

func (p *recordingPrinter) PrintReceipt(_ context.Context, d device.Receipt) (device.ReceiptResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.docs = append(p.docs, d)
	return device.ReceiptResult{ID: d.ID, Number: len(p.docs), Time: time.Now()}, nil
}

// TestReceiptPrintsFICWhenItArrives: with the worker running, the
// receipt waits briefly and prints IIC, FIC and the verification URL;
// while the link is down it prints the IIC alone at once.
func TestReceiptPrintsFICWhenItArrives(t *testing.T) {
	r := newRig(t, rigOptions{})
	pr := &recordingPrinter{}
	jobs := fiscal.NewPrintJobs(r.db, fiscal.PrintJobsOptions{Printer: pr, PrinterID: "r1",
		AwaitFIC: func(ctx context.Context, id string) string { return r.reg.AwaitFIC(ctx, id, 5*time.Second) }})
	// The rig's invoices have no print job; these do.
	inv := fiscal.NewInvoices(r.db, fiscal.InvoicesOptions{Scheme: mustScheme(t), Certificates: r.certs, TIN: issuer.TIN,
		BusinessUnit: issuer.BusinessUnit, Device: issuer.TCR, Software: issuer.Software, Now: r.clk.Now, PrinterID: "r1",
		RegisterTx: r.reg.EnqueueInvoiceTx, Registered: r.reg.Wake})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.reg.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	sale := func() fiscal.Invoice {
		i, err := inv.Create(ctx, fiscal.NewInvoice{Type: fiscal.TypeSale,
			Items:    []fiscal.NewItem{{Name: "Espresso", Quantity: "1", UnitPrice: 150, VATRate: "21"}},
			Payments: []fiscal.NewPayment{{Type: fiscal.PayCash, Amount: 150}}}, fiscal.Caller{KeyID: "k", CertificateID: r.certID})
		if err != nil {
			t.Fatal(err)
		}
		r.reg.Wake()
		return i
	}
	a := sale()
	if did, err := jobs.RunOnce(ctx); err != nil || !did {
		t.Fatalf("print: %v %v", did, err)
	}
	fic, _ := r.sim.FIC(a.Signature.Code)
	footer := pr.docs[0].Footer
	if fic == "" || !slices.Contains(footer, "IIC "+a.Signature.Code) || !slices.Contains(footer, "FIC "+fic) {
		t.Fatalf("footer %q, FIC %q", footer, fic)
	}

	r.goOffline()
	b := sale()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, _ := r.reg.Backlog(ctx); b.Offline {
			break
		}
	}
	t0 := time.Now()
	if _, err := jobs.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Fatalf("waited %v for a FIC while offline", el)
	}
	footer = pr.docs[1].Footer
	if !slices.Contains(footer, "IIC "+b.Signature.Code) || slices.ContainsFunc(footer, func(s string) bool { return len(s) > 4 && s[:4] == "FIC " }) {
		t.Fatalf("offline footer %q", footer)
	}
}
