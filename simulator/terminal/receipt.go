package terminal

import (
	"fmt"
	"strings"
	"time"

	"github.com/posgate/posgate/device/zvt"
)

// receiptWidth is the line width of the simulated receipts.
const receiptWidth = 32

func money(minor int64, cc int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d %s", sign, minor/100, minor%100, zvt.CurrencyAlpha(cc))
}

func pair(l, r string) string {
	gap := receiptWidth - len(l) - len(r)
	if gap < 1 {
		gap = 1
	}
	return l + strings.Repeat(" ", gap) + r
}

func paymentReceipt(e Entry, tid string) []string {
	title := map[Kind]string{Sale: "PAYMENT", Refund: "REFUND", Reversal: "REVERSAL",
		PreAuth: "PRE-AUTHORISATION", Booking: "BOOKING", Release: "RESERVATION RELEASED"}[e.Kind]
	lines := []string{
		"   POSGATE TERMINAL SIMULATOR",
		"        " + title,
		pair("Terminal", tid),
		pair("Date", e.At.Format("02.01.2006 15:04:05")),
		pair("Trace", fmt.Sprintf("%06d", e.Trace)),
		pair("Card", "Girocard"),
		pair("PAN", "6799 **** **** 0019"),
	}
	if e.ReceiptNo > 0 {
		lines = append(lines, pair("Receipt", fmt.Sprintf("%04d", e.ReceiptNo)))
	}
	if e.Kind == Reversal || e.Kind == Booking || e.Kind == Release {
		lines = append(lines, pair("Reverses receipt", fmt.Sprintf("%04d", e.OrigReceipt)))
	}
	lines = append(lines, pair("AMOUNT", money(e.Amount, e.Currency)))
	if e.Approved {
		lines = append(lines, "     TRANSACTION APPROVED")
	} else {
		lines = append(lines, "     TRANSACTION DECLINED", "     "+zvt.ResultText(e.Result))
	}
	return lines
}

func endOfDayReceipt(batch, n int, total int64, tid string, at time.Time) []string {
	return []string{
		"   POSGATE TERMINAL SIMULATOR",
		"          END OF DAY",
		pair("Terminal", tid),
		pair("Date", at.Format("02.01.2006 15:04:05")),
		pair("Batch", fmt.Sprintf("%04d", batch)),
		pair("Transactions", fmt.Sprint(n)),
		pair("TOTAL", money(total, 978)),
		"      SETTLEMENT COMPLETE",
	}
}

// render writes a receipt for a technician watching the simulator.
func (s *Simulator) render(kind string, lines []string) {
	if s.opts.Receipts == nil {
		return
	}
	var b strings.Builder
	edge := "+" + strings.Repeat("-", receiptWidth+2) + "+\n"
	fmt.Fprintf(&b, "%s receipt\n%s", kind, edge)
	for _, l := range lines {
		fmt.Fprintf(&b, "| %-*s |\n", receiptWidth, l)
	}
	b.WriteString(edge)
	fmt.Fprint(s.opts.Receipts, b.String())
}
