package fiscal_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/simulator/printer"
)

// printerInvoices is Invoices for printer p1 whose accepted VAT rates
// are the ones p1 reported.
func printerInvoices(e *env, rates *fiscal.PrinterRates, wait time.Duration) *fiscal.Invoices {
	return fiscal.NewInvoices(e.db, fiscal.InvoicesOptions{
		Scheme: e.sch, Certificates: e.certs, TIN: "12345678", BusinessUnit: "bb123bb123", Device: "cc123cc123",
		Software: "ss123ss123", Now: e.clk.Now, PrinterID: "p1", PrinterRates: rates, RatesWait: wait,
		Payments: e.readPayment,
	})
}

func rateSale(rates ...string) fiscal.NewInvoice {
	req := fiscal.NewInvoice{Type: fiscal.TypeSale}
	for i, r := range rates {
		req.Items = append(req.Items, fiscal.NewItem{Name: "Item " + r, Quantity: "1", UnitPrice: int64(1000 * (i + 1)), VATRate: fiscal.Decimal(r)})
	}
	var total int64
	for _, it := range req.Items {
		total += it.UnitPrice
	}
	req.Payments = []fiscal.NewPayment{{Type: fiscal.PayCash, Amount: total}}
	return req
}

// TestVATByPrinterRates (issue 11 part 10): against a printer programmed
// A 0 %, B 21 %, C 7 %, D 20 % (groups read with 32h on connect), a 21 %
// item prints in B and Albania's 20 % in D, with those rates on paper;
// an invoice with a rate the printer lacks is a 422 on items[i].vat_rate
// and writes nothing.
func TestVATByPrinterRates(t *testing.T) {
	off := int64(datecs.RateDisabled)
	programmed := [8]int64{0, 2100, 700, 2000, off, off, off, off}
	sim, spec := simPrinter(t, printer.Options{VATRates: &programmed})
	e := newEnv(t, "p1")
	ctx := context.Background()
	rates := fiscal.NewPrinterRates(e.db)
	inv := printerInvoices(e, rates, 100*time.Millisecond)

	// Before the printer ever connected, nothing can be checked.
	before := counts(t, e.db)
	if _, err := inv.Create(ctx, rateSale("21"), e.caller("early")); !errors.Is(err, fiscal.ErrPrinterRatesUnknown) {
		t.Fatalf("before the first connection: %v, want ErrPrinterRatesUnknown", err)
	}
	if after := counts(t, e.db); after != before {
		t.Fatalf("refused invoice wrote: %v → %v", before, after)
	}

	// The driver reads the rates on connect; the daemon saves them.
	drv, err := datecs.Open(ctx, spec, datecs.Options{Timeout: 150 * time.Millisecond, Ledger: fiscal.NewLedger(e.db),
		Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
		OnConnect: func(ctx context.Context, _ device.PrinterInfo, v datecs.VATRates) {
			if err := rates.Save(ctx, "p1", v); err != nil {
				t.Error(err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })

	for i, r := range []string{"9.5", "19"} {
		req := rateSale("21", r)
		before := counts(t, e.db)
		_, err := inv.Create(ctx, req, e.caller("bad"+r))
		var ve *fiscal.ValidationError
		if !errors.As(err, &ve) || ve.Field != "items[1].vat_rate" || !ve.Unprocessable {
			t.Fatalf("case %d: rate %s%% the printer lacks: err=%v, want a 422 on items[1].vat_rate", i, r, err)
		}
		if after := counts(t, e.db); after != before {
			t.Fatalf("refused invoice wrote: %v → %v", before, after)
		}
	}
	sale, err := inv.Create(ctx, rateSale("21", "20", "0"), e.caller("ok"))
	if err != nil {
		t.Fatal(err)
	}
	jobs := newJobs(t, e.db, drv, e.clk.Now) // its fixed table says 21 % → A: the printer's rates win
	if !runOnce(t, jobs) {
		t.Fatal("no job ran")
	}
	recs := sim.Receipts()
	if len(recs) != 1 {
		t.Fatalf("%d receipts", len(recs))
	}
	if g := []int{recs[0].Items[0].Group, recs[0].Items[1].Group, recs[0].Items[2].Group}; g[0] != 2 || g[1] != 4 || g[2] != 1 {
		t.Fatalf("groups %v, want B for 21 %%, D for 20 %%, A for 0 %%:\n%s", g, recs[0].Text)
	}
	for _, s := range []string{"VAT B 21.00%", "VAT D 20.00%"} {
		if !strings.Contains(recs[0].Text, s) {
			t.Fatalf("receipt lacks %q:\n%s", s, recs[0].Text)
		}
	}
	if got, _ := e.inv.Get(ctx, sale.ID); got.Print == nil || got.Print.State != fiscal.PrintPrinted {
		t.Fatalf("print %+v", got.Print)
	}
}
