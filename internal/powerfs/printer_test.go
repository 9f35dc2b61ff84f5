//go:build linux

package powerfs_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
)

// printWait bounds how long the restarted daemon may take to print what
// it had not printed before the cut.
const printWait = 30 * time.Second

// pcVATRates are the simulated printer's VAT groups A…H in hundredths of
// a percent: posgate's own map (cmd/posgate vatGroups: 21 % → A, 7 % → B,
// 0 % → C), so the printer books each line in the group posgate meant.
var pcVATRates = [8]int64{2100, 700, 0}

// tillPrinter is the shop's fiscal printer: a simulated Datecs printer
// served on 127.0.0.1 by the test process. It is plugged into its own
// power, so it outlives the daemon's SIGKILL and keeps its journal across
// every restart of one run. Whoever makes it stops it.
type tillPrinter struct {
	sim    *printer.Printer
	addr   string // host:port
	cancel context.CancelFunc
	done   chan error
}

func newTillPrinter(t *testing.T) *tillPrinter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rates := pcVATRates
	ctx, cancel := context.WithCancel(context.Background())
	p := &tillPrinter{
		sim:    printer.New(printer.Options{VATRates: &rates, Log: zerolog.Nop()}),
		addr:   ln.Addr().String(),
		cancel: cancel,
		done:   make(chan error, 1),
	}
	go func() { p.done <- p.sim.ServeListener(ctx, ln) }()
	return p
}

// stop unplugs the printer and waits until it has stopped serving.
func (p *tillPrinter) stop() {
	p.cancel()
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(waitTimeout):
	}
}

// iicOf returns the IIC a receipt prints as its "IIC <code>" comment
// line (fiscal.receiptOf), or "".
func iicOf(d printer.Document) string {
	for _, c := range d.Comments {
		if code, ok := strings.CutPrefix(c, "IIC "); ok {
			return code
		}
	}
	return ""
}

// journal summarises the printer's journal for a failure message, one
// document a line.
func (p *tillPrinter) journal() string {
	var b strings.Builder
	docs := p.sim.Journal()
	fmt.Fprintf(&b, "printer journal (%d documents, %+v):\n", len(docs), p.sim.Counters())
	for _, d := range docs {
		state := "closed"
		if d.Cancelled {
			state = "cancelled"
		}
		fmt.Fprintf(&b, "  slip %d %s %s No %d total %s IIC %q comments %d\n",
			d.Slip, d.Kind, state, d.Number, datecs.FormatAmount(d.Total), iicOf(d), len(d.Comments))
	}
	return b.String()
}

// checkPrints waits until every invoice on the box is printed, then holds
// the printer's journal against them: each invoice is on exactly one
// closed fiscal receipt, with its total and the receipt number its print
// job reports, and no closed receipt belongs to no invoice. Cancelled
// receipts are not printed ones. acked names the invoices a client got a
// 201 for before the cut; the others were in flight or made by a retry.
func checkPrints(c *client, p *tillPrinter, acked map[string]bool, tl *tally) (fail []string) {
	var (
		invs    []invoice
		err     error
		pending []string
	)
	for deadline := time.Now().Add(printWait); ; time.Sleep(20 * time.Millisecond) {
		// The list carries each invoice's print job, as GET
		// /v1/invoices/{id} does; one request a round instead of n.
		if invs, err = listAll[invoice](c, "/v1/invoices?limit=200"); err != nil {
			return []string{"list invoices for their print state: " + err.Error()}
		}
		pending = pending[:0]
		for _, inv := range invs {
			if inv.Print == nil || inv.Print.State == "pending" {
				pending = append(pending, inv.ID)
			}
		}
		if len(pending) == 0 || time.Now().After(deadline) {
			break
		}
	}
	label := func(inv invoice) string {
		what := "not acked before the cut"
		if acked[inv.ID] {
			what = "acked"
		}
		return fmt.Sprintf("invoice %s (%s, %s, total %s, IIC %s)",
			inv.ID, inv.Number, what, datecs.FormatAmount(inv.Totals.Total), inv.Signature.Code)
	}

	byIIC := map[string][]printer.Document{}
	for _, d := range p.sim.Receipts() {
		code := iicOf(d)
		if code == "" {
			fail = append(fail, fmt.Sprintf("closed receipt No %d (total %s) carries no IIC: printed for no invoice",
				d.Number, datecs.FormatAmount(d.Total)))
			continue
		}
		byIIC[code] = append(byIIC[code], d)
	}
	onBox := map[string]bool{}
	for _, inv := range invs {
		onBox[inv.Signature.Code] = true
		docs := byIIC[inv.Signature.Code]
		switch {
		case inv.Print == nil:
			fail = append(fail, label(inv)+" has no print job")
			continue
		case inv.Print.State == "pending":
			fail = append(fail, fmt.Sprintf("%s not printed within %v after the restart (attempts %d, last error %q)",
				label(inv), printWait, inv.Print.Attempts, inv.Print.LastError))
		case inv.Print.State != "printed":
			fail = append(fail, fmt.Sprintf("%s print job is %s: %s", label(inv), inv.Print.State, inv.Print.LastError))
		}
		switch {
		case len(docs) > 1:
			var nos []int
			for _, d := range docs {
				nos = append(nos, d.Number)
			}
			tl.doublePrints++
			fail = append(fail, fmt.Sprintf("%s printed %d times: receipts %v", label(inv), len(docs), nos))
		case len(docs) == 0 && inv.Print.State == "printed":
			fail = append(fail, fmt.Sprintf("%s is printed as receipt %d by its print job, but not in the printer's journal",
				label(inv), inv.Print.ReceiptNumber))
		case len(docs) == 1 && docs[0].Total != inv.Totals.Total:
			fail = append(fail, fmt.Sprintf("%s printed on receipt %d with total %s", label(inv), docs[0].Number,
				datecs.FormatAmount(docs[0].Total)))
		case len(docs) == 1 && inv.Print.State == "printed" && docs[0].Number != inv.Print.ReceiptNumber:
			fail = append(fail, fmt.Sprintf("%s printed on receipt %d, its print job says %d", label(inv), docs[0].Number,
				inv.Print.ReceiptNumber))
		}
	}
	// A receipt for an invoice the box does not have: printed, then lost
	// (its number would be given to another invoice).
	var lost []string
	for code := range byIIC {
		if !onBox[code] {
			lost = append(lost, code)
		}
	}
	slices.Sort(lost)
	for _, code := range lost {
		fail = append(fail, fmt.Sprintf("receipt No %d has IIC %s, which no invoice on the box has: printed, then lost",
			byIIC[code][0].Number, code))
	}
	if len(pending) == 0 && p.sim.Counters().ReceiptOpen {
		fail = append(fail, "every invoice is printed, yet a receipt is left open on the printer")
	}
	if len(fail) > 0 {
		fail = append(fail, p.journal())
	}
	return fail
}
