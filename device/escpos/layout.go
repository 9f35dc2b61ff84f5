package escpos

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/posgate/posgate/device"
)

// CopyMark is printed above and below a slip that is sent again after an
// interrupted attempt (Montenegrin "duplikat").
const CopyMark = "COPY / DUPLIKAT"

// Layout options of a job.
type layout struct {
	page   CodePage
	width  int  // characters per line in the normal size
	qrSize byte // QR module size in dots
	asb    bool
}

// render returns the bytes of one job: initialise, select the code page,
// the lines (each with its alignment, emphasis and size), the QR code,
// the trailer, and a cut. With copy the slip starts with a cut and is
// framed by CopyMark.
func (l layout) render(s device.Slip, copy bool) []byte {
	out := append([]byte(nil), Init()...)
	if copy {
		// Cut off whatever an interrupted attempt left on the paper, so
		// the copy is a slip of its own.
		out = append(out, CutAfterFeed(0)...)
	}
	if l.asb {
		out = append(out, AutoStatusBack(ASBAll)...)
	}
	out = append(out, l.page.Select()...)
	var st lineState
	mark := device.SlipLine{Text: CopyMark, Align: device.AlignCenter, Bold: true}
	if copy {
		out = st.line(out, l.page, mark)
	}
	for _, ln := range s.Lines {
		out = st.line(out, l.page, ln)
	}
	if s.QR != "" {
		out = st.set(out, lineState{align: device.AlignCenter})
		out = append(out, QRSelectModel(QRModel2)...)
		out = append(out, QRModuleSize(l.qrSize)...)
		out = append(out, QRErrorLevel(QRLevelM)...)
		out = append(out, QRStore([]byte(s.QR))...)
		out = append(out, QRPrint()...)
		out = append(out, LF)
	}
	for _, ln := range s.Trailer {
		out = st.line(out, l.page, ln)
	}
	if copy {
		out = st.line(out, l.page, mark)
	}
	out = st.set(out, lineState{})
	return append(out, CutAfterFeed(0)...)
}

// lineState is the printer's current modes, so that a command is sent
// only when a line needs a different one.
type lineState struct {
	align  device.Align
	bold   bool
	double bool
}

func (st *lineState) set(out []byte, want lineState) []byte {
	if want.align != st.align {
		out = append(out, Justify(byte(want.align))...)
	}
	if want.bold != st.bold {
		out = append(out, Bold(want.bold)...)
	}
	if want.double != st.double {
		n := 1
		if want.double {
			n = 2
		}
		out = append(out, Size(n, n)...)
	}
	*st = want
	return out
}

func (st *lineState) line(out []byte, page CodePage, ln device.SlipLine) []byte {
	out = st.set(out, lineState{align: ln.Align, bold: ln.Bold, double: ln.Double})
	out = append(out, page.Encode(ln.Text)...)
	return append(out, LF)
}

// validate refuses a slip the printer could not print as given.
func validateSlip(s device.Slip) error {
	if s.ID == "" {
		return fmt.Errorf("slip ID required")
	}
	if len(s.QR) > QRMaxData {
		return fmt.Errorf("QR payload of %d bytes: at most %d", len(s.QR), QRMaxData)
	}
	if len(s.Lines) == 0 && s.QR == "" && len(s.Trailer) == 0 {
		return fmt.Errorf("slip %s is empty", s.ID)
	}
	return nil
}

// ReceiptSlip lays out a fiscal receipt (as the print jobs build it) for a
// receipt printer width characters wide: a storno title when it reverses
// an earlier receipt, the items with quantity, price, discount and amount,
// the receipt discount, the total, the payments and change, the footer
// (invoice number, IIC, verification URL), and the QR code of doc.QR.
// It also returns the total in minor units.
func ReceiptSlip(doc device.Receipt, width int) (device.Slip, int64) {
	s := device.Slip{ID: doc.ID, QR: doc.QR}
	add := func(ln device.SlipLine) { s.Lines = append(s.Lines, ln) }
	rule := device.SlipLine{Text: strings.Repeat("-", width)}
	if doc.Storno != nil {
		add(device.SlipLine{Text: "STORNO", Align: device.AlignCenter, Bold: true, Double: true})
		if doc.Storno.OriginalNumber > 0 { // a receipt printer numbers nothing
			add(device.SlipLine{Text: fmt.Sprintf("Original receipt %d", doc.Storno.OriginalNumber), Align: device.AlignCenter})
		}
		if !doc.Storno.OriginalTime.IsZero() {
			add(device.SlipLine{Text: doc.Storno.OriginalTime.Format("02.01.2006 15:04"), Align: device.AlignCenter})
		}
		add(rule)
	}
	var total int64
	for _, l := range doc.Lines {
		if l.Comment != "" {
			add(device.SlipLine{Text: l.Comment})
			continue
		}
		it := l.Item
		q := it.Quantity
		if q == 0 {
			q = 1000
		}
		amount := roundDiv(it.UnitPrice*q, 1000)
		add(device.SlipLine{Text: it.Name})
		add(device.SlipLine{Text: twoCols(fmt.Sprintf("  %s x %s", formatQty(q), money(it.UnitPrice)), money(amount), width)})
		if d := modify(amount, it.Discount); d != 0 {
			add(device.SlipLine{Text: twoCols("  "+modifierName(it.Discount.Kind), money(d), width)})
			amount += d
		}
		total += amount
	}
	if d := modify(total, doc.Discount); d != 0 {
		add(rule)
		add(device.SlipLine{Text: twoCols(modifierName(doc.Discount.Kind), money(d), width)})
		total += d
	}
	add(rule)
	add(device.SlipLine{Text: twoCols("TOTAL", money(total), width/2), Bold: true, Double: true})
	paid := int64(0)
	for _, p := range doc.Payments {
		amount := p.Amount
		if amount == 0 {
			amount = max(total-paid, 0)
		}
		paid += amount
		add(device.SlipLine{Text: twoCols(paymentName(p.Mode), money(amount), width)})
	}
	if len(doc.Payments) == 0 {
		add(device.SlipLine{Text: twoCols(paymentName(device.PayCash), money(total), width)})
	} else if paid > total {
		add(device.SlipLine{Text: twoCols("Change", money(paid-total), width)})
	}
	if len(doc.Footer) > 0 {
		add(rule)
		for _, f := range doc.Footer {
			add(device.SlipLine{Text: f})
		}
	}
	return s, total
}

// modify returns the signed change a discount or surcharge makes to amount.
func modify(amount int64, m device.Modifier) int64 {
	switch m.Kind {
	case device.SurchargePercent:
		return roundDiv(amount*m.Value, 10000)
	case device.DiscountPercent:
		return -roundDiv(amount*m.Value, 10000)
	case device.SurchargeAmount:
		return m.Value
	case device.DiscountAmount:
		return -m.Value
	}
	return 0
}

func modifierName(k device.ModifierKind) string {
	if k == device.SurchargePercent || k == device.SurchargeAmount {
		return "Surcharge"
	}
	return "Discount"
}

func paymentName(m device.PaymentMode) string {
	switch m {
	case device.PayCash:
		return "Cash"
	case device.PayCard:
		return "Card"
	}
	return "Other"
}

// roundDiv is a/b rounded half away from zero.
func roundDiv(a, b int64) int64 {
	if a < 0 {
		return -roundDiv(-a, b)
	}
	return (a + b/2) / b
}

// money formats minor units as 12.34.
func money(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// formatQty formats thousandths without trailing zeros: 1500 is 1.5.
func formatQty(q int64) string {
	s := strconv.FormatInt(q/1000, 10)
	if f := q % 1000; f != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%03d", f), "0")
	}
	return s
}

// twoCols puts left and right on one line width characters wide.
func twoCols(left, right string, width int) string {
	gap := width - utf8.RuneCountInString(left) - utf8.RuneCountInString(right)
	return left + strings.Repeat(" ", max(gap, 1)) + right
}
