package datecs_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
)

func TestPrintReceipt(t *testing.T) {
	eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)
		doc := sampleReceipt("inv-1")
		if got, want := datecs.ReceiptTotal(doc), int64(sampleTotal); got != want {
			t.Fatalf("ReceiptTotal=%d, want %d", got, want)
		}
		res, err := p.PrintReceipt(ctx, doc)
		if err != nil {
			t.Fatalf("PrintReceipt: %v", err)
		}
		if res.Amount != sampleTotal || res.Number != 1 || res.Recovered || res.Time.IsZero() {
			t.Fatalf("result=%+v, want amount %d, number 1, not recovered, with time", res, sampleTotal)
		}
		recs := r.sim.Receipts()
		if len(recs) != 1 {
			t.Fatalf("%d receipts printed, want 1", len(recs))
		}
		rec := recs[0]
		if rec.Total != sampleTotal || len(rec.Items) != 4 || rec.UniqueSaleNumber != sampleUNP("inv-1") {
			t.Fatalf("printed %+v", rec)
		}
		// Per group: B = 24.00 + 13.50, D = 2.50, A = 1.99, less 1.00 spread
		// in proportion (B 41.99→ −0.89, D −0.06, A −0.05).
		if got, want := rec.Groups, [8]int64{194, 3661, 0, 244}; got != want {
			t.Fatalf("groups=%v, want %v", got, want)
		}
		if got := rec.Payments; len(got) != 2 || got[0] != (printer.Payment{Mode: 1, Amount: 2000}) ||
			got[1] != (printer.Payment{Mode: 0, Amount: 3000}) || rec.Change != 901 {
			t.Fatalf("payments=%+v change=%d", got, rec.Change)
		}
		if len(rec.Comments) != 3 || rec.Comments[0] != "Fresh from the farm" {
			t.Fatalf("comments=%q", rec.Comments)
		}
		for _, s := range []string{"Cheese", "Хляб ръжен", "TOTAL", "40.99", "CHANGE", "9.01", "FISCAL RECEIPT No 0000001", "IIC E4033D471FEEA47A3C664B15C669C709"} {
			if !strings.Contains(rec.Text, s) {
				t.Errorf("receipt text lacks %q:\n%s", s, rec.Text)
			}
		}
		t.Logf("printed:\n%s", rec.Text)

		// The same document again: nothing is sent, the same result comes back.
		before := r.sim.Executed()
		again, err := p.PrintReceipt(ctx, doc)
		if err != nil || again != res {
			t.Fatalf("second PrintReceipt=%+v, %v; want %+v", again, err, res)
		}
		if n := r.sim.Executed(); n != before {
			t.Fatalf("second PrintReceipt sent %d frames", n-before)
		}

		// X and Z reports match the simulator's registers.
		c := r.sim.Counters()
		x, err := p.XReport(ctx)
		if err != nil {
			t.Fatalf("XReport: %v", err)
		}
		if x.Totals != c.Totals || x.Totals != rec.Groups || x.Number != c.Z+1 {
			t.Fatalf("X report=%+v, counters=%+v", x, c)
		}
		z, err := p.ZReport(ctx)
		if err != nil {
			t.Fatalf("ZReport: %v", err)
		}
		c = r.sim.Counters()
		if z.Totals != x.Totals || z.Number != 1 || c.Z != 1 || c.Totals != [8]int64{} {
			t.Fatalf("Z report=%+v, counters after=%+v", z, c)
		}
		lr, err := p.LastReceipt(ctx)
		if err != nil || lr.Number != 1 || lr.ZNumber != 1 || lr.ZTime.IsZero() {
			t.Fatalf("LastReceipt=%+v, %v", lr, err)
		}
	})
}

func TestPrintReceiptPaperOut(t *testing.T) {
	eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)
		doc := sampleReceipt("inv-2")
		r.sim.PaperOutAfter(3) // open, Cheese, comment; then Milk finds no paper

		_, err := p.PrintReceipt(ctx, doc)
		var pe *device.PrinterError
		if !errors.Is(err, device.ErrPaperOut) || !errors.As(err, &pe) || pe.Command != 0x31 {
			t.Fatalf("PrintReceipt err=%v, want ErrPaperOut on 31h", err)
		}
		st, err := p.Status(ctx)
		if err != nil || !st.PaperOut || !st.ReceiptOpen {
			t.Fatalf("Status=%+v, %v; want paper out with the receipt open", st, err)
		}
		// Still no paper: the retry fails the same way and prints nothing.
		if _, err := p.PrintReceipt(ctx, doc); !errors.Is(err, device.ErrPaperOut) {
			t.Fatalf("retry without paper err=%v, want ErrPaperOut", err)
		}

		r.sim.SetPaperOut(false)
		res, err := p.PrintReceipt(ctx, doc)
		if err != nil {
			t.Fatalf("PrintReceipt after paper is back: %v", err)
		}
		if _, err := p.PrintReceipt(ctx, doc); err != nil {
			t.Fatalf("PrintReceipt once more: %v", err)
		}
		recs := r.sim.Receipts()
		if len(recs) != 1 || recs[0].Total != sampleTotal || res.Amount != sampleTotal {
			t.Fatalf("%d receipts (%+v), result %+v; want exactly one of %d", len(recs), recs, res, sampleTotal)
		}
		cancelled := 0
		for _, d := range r.sim.Journal() {
			if d.Cancelled {
				cancelled++
			}
		}
		if cancelled != 1 {
			t.Fatalf("%d cancelled receipts, want the interrupted one", cancelled)
		}
	})
}

func TestPrintReceiptLostCloseAnswer(t *testing.T) {
	eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)
		// The answer to close is lost once: the driver resends the same
		// frame and the printer replays its answer instead of closing twice.
		r.sim.LoseAnswerTo(0x38)
		res, err := p.PrintReceipt(ctx, sampleReceipt("inv-3"))
		if err != nil {
			t.Fatalf("PrintReceipt: %v", err)
		}
		if n := len(r.sim.Receipts()); n != 1 || res.Number != 1 || res.Recovered {
			t.Fatalf("%d receipts, result %+v", n, res)
		}
	})
}

func TestPrintReceiptLineDroppedAfterClose(t *testing.T) {
	eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)
		doc := sampleReceipt("inv-4")
		// The printer closes the receipt, then the line dies before the answer.
		r.sim.DropLineAfter(0x38)
		if _, err := p.PrintReceipt(ctx, doc); err == nil {
			t.Fatal("PrintReceipt succeeded on a dead line")
		}
		p.Close()
		r.sim.RestoreLine()

		p = r.connect(t) // same ledger, new connection
		res, err := p.PrintReceipt(ctx, doc)
		if err != nil {
			t.Fatalf("PrintReceipt after reconnect: %v", err)
		}
		if !res.Recovered || res.Number != 1 || res.Amount != sampleTotal {
			t.Fatalf("result=%+v, want the recovered receipt 1", res)
		}
		if n := len(r.sim.Receipts()); n != 1 {
			t.Fatalf("%d receipts printed, want 1", n)
		}
		// A new document prints normally afterwards.
		res2, err := p.PrintReceipt(ctx, sampleReceipt("inv-5"))
		if err != nil || res2.Number != 2 || res2.Recovered {
			t.Fatalf("next document: %+v, %v", res2, err)
		}
	})
}

func TestPrintReceiptRecovery(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dropAt   uint16
		finished bool
	}{
		// Lost after the first payment: the receipt can only be completed.
		{"AfterPayment", 0x35, true},
		// Lost after a sale: the open receipt is voided and printed again.
		{"BeforePayment", 0x31, false},
		// Lost right after open.
		{"AfterOpen", 0x30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
				ctx := testCtx(t)
				p := r.connect(t)
				doc := sampleReceipt("inv-6")
				r.sim.DropLineAfter(tc.dropAt)
				if _, err := p.PrintReceipt(ctx, doc); err == nil {
					t.Fatal("PrintReceipt succeeded on a dead line")
				}
				if !r.sim.Counters().ReceiptOpen {
					t.Fatal("no receipt left open by the interruption")
				}
				p.Close()
				r.sim.RestoreLine()
				p = r.connect(t)
				res, err := p.PrintReceipt(ctx, doc)
				if err != nil {
					t.Fatalf("PrintReceipt after reconnect: %v", err)
				}
				if res.Finished != tc.finished || res.Amount != sampleTotal {
					t.Fatalf("result=%+v, want finished=%v", res, tc.finished)
				}
				recs := r.sim.Receipts()
				if len(recs) != 1 || recs[0].Total != sampleTotal {
					t.Fatalf("receipts=%+v, want one of %d", recs, sampleTotal)
				}
				var paid int64
				for _, pay := range recs[0].Payments {
					paid += pay.Amount
				}
				if paid != 5000 {
					t.Fatalf("payments %+v sum to %d, want 5000", recs[0].Payments, paid)
				}
			})
		})
	}
}

func TestPrintReceiptUncertain(t *testing.T) {
	eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)
		doc := sampleReceipt("inv-7")
		r.sim.DropLineAfter(0x30)
		if _, err := p.PrintReceipt(ctx, doc); err == nil {
			t.Fatal("PrintReceipt succeeded on a dead line")
		}
		p.Close()
		r.sim.RestoreLine()
		p = r.connect(t)
		// Someone else completes a different receipt on the printer meanwhile.
		if err := p.CancelReceipt(ctx); err != nil {
			t.Fatal(err)
		}
		other := sampleReceipt("other")
		other.Lines = other.Lines[:1]
		other.Payments = nil
		if _, err := p.PrintReceipt(ctx, other); err != nil {
			t.Fatal(err)
		}
		_, err := p.PrintReceipt(ctx, doc)
		if !errors.Is(err, device.ErrPrintUncertain) {
			t.Fatalf("err=%v, want ErrPrintUncertain", err)
		}
		if n := len(r.sim.Receipts()); n != 1 {
			t.Fatalf("%d receipts, want only the other one", n)
		}
	})
}

func TestPrintReceiptRefusesBadDocuments(t *testing.T) {
	eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)
		short := sampleReceipt("short")
		short.Payments = []device.Payment{{Mode: device.PayCard, Amount: 1000}}
		badGroup := sampleReceipt("group")
		badGroup.Lines[0].Item.VATGroup = 9
		for _, doc := range []device.Receipt{short, badGroup, {ID: "empty"}, {Lines: sampleReceipt("").Lines}} {
			if _, err := p.PrintReceipt(ctx, doc); err == nil {
				t.Errorf("PrintReceipt(%+v) succeeded", doc)
			}
		}
		if n := r.sim.Executed(); n != 3 {
			t.Fatalf("%d frames executed, want only the 3 of the probe (4Ah, 5Ah, 32h)", n)
		}
	})
}

func TestPrintStornoReceipt(t *testing.T) {
	eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)
		sale, err := p.PrintReceipt(ctx, sampleReceipt("inv-8"))
		if err != nil {
			t.Fatal(err)
		}
		refund := sampleReceipt("inv-8-refund")
		refund.Storno = &device.StornoHeader{Reason: device.StornoRefund, OriginalNumber: sale.Number,
			OriginalTime: sale.Time, FiscalMemory: p.Identity().FiscalMemory}
		res, err := p.PrintReceipt(ctx, refund)
		if err != nil || res.Number != 2 || res.Amount != sampleTotal {
			t.Fatalf("storno=%+v, %v", res, err)
		}
		recs := r.sim.Receipts()
		if len(recs) != 2 || recs[1].Kind != printer.KindStorno {
			t.Fatalf("receipts %+v", recs)
		}
		x, err := p.XReport(ctx)
		if err != nil || x.Storno != recs[1].Groups || x.Totals != recs[0].Groups {
			t.Fatalf("X report %+v, %v", x, err)
		}
	})
}
