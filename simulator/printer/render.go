package printer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// width is the paper width in characters of a 57 mm roll on an FP-700X.
const width = 42

// twoCols puts left and right on one line of the paper.
func twoCols(left, right string) string {
	gap := width - utf8.RuneCountInString(left) - utf8.RuneCountInString(right)
	if gap < 1 {
		gap = 1
	}
	return left + strings.Repeat(" ", gap) + right
}

func center(s string) string {
	pad := (width - utf8.RuneCountInString(s)) / 2
	if pad < 0 {
		pad = 0
	}
	return strings.Repeat(" ", pad) + s
}

// render prints a document: a header with the printer's identity, the body
// lines, and a footer with the title, time and fiscal memory number.
func render(o Options, d Document, body []string, title string) string {
	var b strings.Builder
	rule := strings.Repeat("-", width)
	fmt.Fprintln(&b, center(o.Model+" "+o.Serial))
	if d.UniqueSaleNumber != "" {
		fmt.Fprintln(&b, center(d.UniqueSaleNumber))
	}
	fmt.Fprintln(&b, rule)
	for _, l := range body {
		fmt.Fprintln(&b, l)
	}
	fmt.Fprintln(&b, rule)
	if d.QR != "" {
		fmt.Fprintln(&b, "QR "+d.QR)
	}
	if d.Duplicate {
		fmt.Fprintln(&b, center("DUPLICATE"))
	}
	fmt.Fprintln(&b, center(title))
	fmt.Fprintln(&b, twoCols(fmt.Sprintf("SLIP %07d", d.Slip), d.Time.Format("02-01-2006 15:04:05")))
	fmt.Fprintln(&b, center("FM "+o.FiscalMemory))
	return b.String()
}
