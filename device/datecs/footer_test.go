package datecs_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/simulator/printer"
)

// TestRetriedReceiptFooterOnce (issue 11 part 12): whatever printing
// command an interruption hits, the receipt finally closed carries each
// comment and footer line once. The paper runs out after n printing
// commands; the retry once paper is back resumes or reprints the
// document. Before the fix a retry that completed an open, paid receipt
// sent its footer (the IIC and URL) again.
func TestRetriedReceiptFooterOnce(t *testing.T) {
	doc := sampleReceipt("")
	want := append([]string{"Fresh from the farm"}, doc.Footer...)
	for n := 1; n <= 12; n++ {
		eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
			ctx := testCtx(t)
			p := r.connect(t)
			doc := sampleReceipt("footer")
			r.sim.PaperOutAfter(n)
			_, err := p.PrintReceipt(ctx, doc)
			if err != nil {
				if !errors.Is(err, device.ErrPaperOut) {
					t.Fatalf("n=%d: %v", n, err)
				}
				r.sim.SetPaperOut(false)
				if _, err = p.PrintReceipt(ctx, doc); err != nil {
					t.Fatalf("n=%d: retry: %v", n, err)
				}
			}
			recs := r.sim.Receipts()
			if len(recs) != 1 {
				t.Fatalf("n=%d: %d receipts", n, len(recs))
			}
			if got := recs[0].Comments; !slices.Equal(got, want) {
				t.Fatalf("n=%d: comments %q, want each once: %q\n%s", n, got, want, recs[0].Text)
			}
			var paid int64
			for _, pay := range recs[0].Payments {
				paid += pay.Amount
			}
			if paid != 5000 || recs[0].Total != sampleTotal {
				t.Fatalf("n=%d: paid %d total %d", n, paid, recs[0].Total)
			}
		})
	}
}
