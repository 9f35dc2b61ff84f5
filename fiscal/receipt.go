package fiscal

import (
	"time"

	"github.com/posgate/posgate/device"
)

// ReceiptOptions shape the printed receipt of an invoice.
type ReceiptOptions struct {
	Operator int    // printer operator number; 0 means 1
	Password string // operator password; "" means the printer default
	// VATGroups maps VAT rates (hundredths of a percent) to printer
	// groups 1…8; the same map as InvoicesOptions.VATGroups.
	VATGroups map[int64]int
	// Width is the printer's comment line width; the verification URL is
	// cut into lines this long. Default 42 (Datecs FP-700X).
	Width int
}

func (o ReceiptOptions) withDefaults() ReceiptOptions {
	if o.VATGroups == nil {
		o.VATGroups = defaultVATGroups()
	}
	if o.Width <= 0 {
		o.Width = 42
	}
	return o
}

func defaultVATGroups() map[int64]int { return map[int64]int{2100: 1, 700: 2, 0: 3} }

// printedReceipt identifies the printed receipt of an invoice, which a
// storno receipt must quote.
type printedReceipt struct {
	Number       int
	Time         time.Time // the printer's time, else when posgate saw it printed
	FiscalMemory string
}

// receiptBody is the fiscal receipt of an invoice: its lines with their
// VAT groups and its payments; the profile adds what it shows. A refund or void is a storno receipt
// of orig, the sale's printed receipt, with the amounts as positive
// numbers (the printer takes them off the day's turnover).
func receiptBody(inv Invoice, o ReceiptOptions, orig *printedReceipt) device.Receipt {
	hdr := device.ReceiptHeader{Operator: o.Operator, Password: o.Password}
	r := device.Receipt{ID: inv.ID, Header: hdr}
	if orig != nil {
		reason := device.StornoRefund
		if inv.Type == TypeVoid {
			reason = device.StornoOperatorError
		}
		r.Storno = &device.StornoHeader{ReceiptHeader: hdr, Reason: reason,
			OriginalNumber: orig.Number, OriginalTime: orig.Time, FiscalMemory: orig.FiscalMemory}
	}
	for _, it := range inv.Items {
		q, _ := parseDecimal(string(it.Quantity), 3)
		rate, _ := parseDecimal(string(it.VATRate), 2)
		// VATRate lets the driver check the group against the printer's
		// programming before it prints anything.
		item := device.Item{
			Name: it.Name, VATGroup: o.VATGroups[rate], VATRate: &rate, UnitPrice: it.UnitPrice, Quantity: q,
		}
		if it.Discount > 0 {
			item.Discount = device.Modifier{Kind: device.DiscountAmount, Value: it.Discount}
		}
		r.Lines = append(r.Lines, device.Line{Item: item})
	}
	// Amounts as paid: the printer computes the change itself.
	for _, p := range inv.Payments {
		mode := device.PayCash
		if p.Type == PayCard {
			mode = device.PayCard
		}
		r.Payments = append(r.Payments, device.Payment{Mode: mode, Amount: abs(p.Amount)})
	}
	return r
}

// receiptOf is receiptBody with the signature footer (SignatureFooter):
// the receipt of a signed invoice when no profile shapes it.
func receiptOf(inv Invoice, o ReceiptOptions, orig *printedReceipt) device.Receipt {
	r := receiptBody(inv, o, orig)
	r.Footer, r.QR = SignatureFooter(inv, o.Width)
	return r
}

// chunk cuts s into pieces of at most n bytes (URLs are ASCII).
func chunk(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
