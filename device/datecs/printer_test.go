package datecs_test

import (
	"errors"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/simulator/printer"
)

func TestPrinterCommands(t *testing.T) {
	eachTransport(t, printer.Options{Model: "DP-150X", Serial: "DT517985", FiscalMemory: "02517985"}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)

		t.Run("Info", func(t *testing.T) {
			info, err := p.Info(ctx)
			if err != nil || info.Model != "DP-150X" || info.Serial != "DT517985" || info.FiscalMemory != "02517985" {
				t.Fatalf("Info=%+v, %v", info, err)
			}
			if p.Identity() != info {
				t.Fatalf("Identity=%+v, want %+v", p.Identity(), info)
			}
		})
		t.Run("DateTime", func(t *testing.T) {
			want := time.Date(2026, 5, 17, 13, 55, 18, 0, time.Local)
			if err := p.SetDateTime(ctx, want); err != nil {
				t.Fatal(err)
			}
			got, err := p.DateTime(ctx)
			if err != nil || got.Sub(want) < 0 || got.Sub(want) > 2*time.Second {
				t.Fatalf("DateTime=%v, %v; want %v", got, err, want)
			}
		})
		t.Run("ErrReceiptOpen", func(t *testing.T) {
			if _, err := p.OpenReceipt(ctx, device.ReceiptHeader{}); err != nil {
				t.Fatal(err)
			}
			_, err := p.OpenReceipt(ctx, device.ReceiptHeader{})
			if !errors.Is(err, device.ErrReceiptOpen) || !errors.Is(err, device.ErrCommandNotPermitted) {
				t.Fatalf("second open err=%v, want ErrReceiptOpen", err)
			}
			if _, err := p.ZReport(ctx); !errors.Is(err, device.ErrReceiptOpen) {
				t.Fatalf("Z report with a receipt open err=%v, want ErrReceiptOpen", err)
			}
			ts, err := p.Transaction(ctx)
			if err != nil || ts.Open != device.FiscalOpen || ts.Number != 1 {
				t.Fatalf("Transaction=%+v, %v", ts, err)
			}
			if err := p.CancelReceipt(ctx); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("ErrNoReceipt", func(t *testing.T) {
			err := p.AddItem(ctx, device.Item{Name: "Tea", VATGroup: 2, UnitPrice: 100})
			if !errors.Is(err, device.ErrNoReceipt) {
				t.Fatalf("AddItem err=%v, want ErrNoReceipt", err)
			}
		})
		t.Run("CancelOnlyBeforePayment", func(t *testing.T) {
			if _, err := p.OpenReceipt(ctx, device.ReceiptHeader{}); err != nil {
				t.Fatal(err)
			}
			if err := p.AddItem(ctx, device.Item{Name: "Tea", VATGroup: 2, UnitPrice: 350}); err != nil {
				t.Fatal(err)
			}
			pr, err := p.AddPayment(ctx, device.Payment{Mode: device.PayCard, Amount: 100})
			if err != nil || pr.Due != 250 {
				t.Fatalf("AddPayment=%+v, %v; want 2.50 due", pr, err)
			}
			if err := p.CancelReceipt(ctx); !errors.Is(err, device.ErrCommandNotPermitted) {
				t.Fatalf("cancel after payment err=%v, want ErrCommandNotPermitted", err)
			}
			if _, err := p.CloseReceipt(ctx); !errors.Is(err, device.ErrPrinterRejected) {
				t.Fatalf("close unpaid err=%v, want a refusal", err)
			}
			pr, err = p.AddPayment(ctx, device.Payment{Mode: device.PayCash, Amount: 500})
			if err != nil || pr.Change != 250 {
				t.Fatalf("AddPayment=%+v, %v; want 2.50 change", pr, err)
			}
			if _, err := p.CloseReceipt(ctx); err != nil {
				t.Fatal(err)
			}
		})
		t.Run("Storno", func(t *testing.T) {
			if _, err := p.OpenStorno(ctx, device.StornoHeader{Reason: device.StornoRefund, OriginalNumber: 1,
				OriginalTime: time.Now(), FiscalMemory: "02517985"}); err != nil {
				t.Fatal(err)
			}
			ts, err := p.Transaction(ctx)
			if err != nil || ts.Open != device.StornoOpen {
				t.Fatalf("Transaction=%+v, %v", ts, err)
			}
			if err := p.AddItem(ctx, device.Item{Name: "Tea", VATGroup: 2, UnitPrice: 350}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.AddPayment(ctx, device.Payment{}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.CloseReceipt(ctx); err != nil {
				t.Fatal(err)
			}
			x, err := p.XReport(ctx)
			if err != nil || x.Storno[1] != 350 || x.Totals[1] != 350 {
				t.Fatalf("X report=%+v, %v; want 3.50 sales and storno in B", x, err)
			}
		})
		t.Run("Cash", func(t *testing.T) {
			before, err := p.Cash(ctx, device.CashIn, 0)
			if err != nil {
				t.Fatal(err)
			}
			cs, err := p.Cash(ctx, device.CashIn, 10000)
			if err != nil || cs.Sum != before.Sum+10000 || cs.In != before.In+10000 {
				t.Fatalf("cash in=%+v, %v (before %+v)", cs, err, before)
			}
			cs, err = p.Cash(ctx, device.CashOut, 2500)
			if err != nil || cs.Sum != before.Sum+7500 || cs.Out != 2500 {
				t.Fatalf("cash out=%+v, %v", cs, err)
			}
			if _, err := p.Cash(ctx, device.CashOut, 1e9); !errors.Is(err, device.ErrPrinterRejected) {
				t.Fatalf("cash out beyond the drawer err=%v, want a refusal", err)
			}
			if c := r.sim.Counters(); c.CashSum != cs.Sum || c.CashIn != cs.In || c.CashOut != cs.Out {
				t.Fatalf("counters=%+v, driver=%+v", c, cs)
			}
		})
		t.Run("PrintText", func(t *testing.T) {
			if err := p.PrintText(ctx, []string{"Hello", "Здравей"}); err != nil {
				t.Fatal(err)
			}
			j := r.sim.Journal()
			if d := j[len(j)-1]; d.Kind != printer.KindNonFiscal || len(d.Comments) != 2 || d.Comments[1] != "Здравей" {
				t.Fatalf("last document %+v", d)
			}
		})
		t.Run("ErrCoverOpen", func(t *testing.T) {
			r.sim.SetCoverOpen(true)
			_, err := p.OpenReceipt(ctx, device.ReceiptHeader{})
			r.sim.SetCoverOpen(false)
			if !errors.Is(err, device.ErrCoverOpen) {
				t.Fatalf("err=%v, want ErrCoverOpen", err)
			}
		})
		t.Run("BusySYN", func(t *testing.T) {
			r.sim.BusyFor(400 * time.Millisecond) // longer than the 150 ms host timeout
			start := time.Now()
			if _, err := p.Status(ctx); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < 400*time.Millisecond {
				t.Fatalf("answered after %v, before the busy time", d)
			}
		})
		t.Run("Garbage", func(t *testing.T) {
			r.sim.Garbage(64)
			if _, err := p.Info(ctx); err != nil {
				t.Fatal(err)
			}
		})
	})
}
