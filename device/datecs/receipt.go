package datecs

import (
	"context"
	"errors"
	"fmt"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
)

// PrintReceipt implements device.ReceiptPrinter: it prints doc as one fiscal
// receipt, at most once per doc.ID, whatever happened to earlier attempts.
//
// The printer is the source of truth. Before the first frame of a document
// the driver records (Options.Ledger) the printer's last fiscal receipt
// number; before closing it records the total the printer computed. An
// attempt for a document it has seen before starts with 4Ch (the open or the
// last receipt: number, items, amount, paid) and decides from that, as
// device.ReceiptPrinter describes. A receipt is recognised as this
// document's when its number is the recorded one plus one and its amount is
// the recorded (or, if none was recorded yet, the computed) total.
//
// Errors: a *device.PrinterError (paper out, cover open …) leaves the
// attempt recorded so the next call resumes; device.ErrPrintUncertain
// means the printer's state cannot be matched to the document and nothing
// was sent.
func (p *Printer) PrintReceipt(ctx context.Context, doc device.Receipt) (device.ReceiptResult, error) {
	if err := validateReceipt(doc); err != nil {
		return device.ReceiptResult{}, fmt.Errorf("print receipt %s: %w", doc.ID, err)
	}
	p.printMu.Lock()
	defer p.printMu.Unlock()
	log := p.opts.Log.With().Str(logkey.InvoiceID, doc.ID).Logger()
	if err := p.checkRates(doc.Lines); err != nil {
		return device.ReceiptResult{}, fmt.Errorf("print receipt %s: %w", doc.ID, err)
	}

	a, known, err := p.opts.Ledger.LoadAttempt(ctx, doc.ID)
	if err != nil {
		return device.ReceiptResult{}, fmt.Errorf("print receipt %s: load attempt: %w", doc.ID, err)
	}
	if known && a.Done {
		return a.Result, nil
	}
	ts, err := p.Transaction(ctx)
	if err != nil {
		return device.ReceiptResult{}, fmt.Errorf("print receipt %s: %w", doc.ID, err)
	}

	if known && ts.Open != device.NoReceiptOpen && ts.Number == a.Before+1 && ts.Paid > 0 {
		// Our receipt, paid at least in part: it can only be completed.
		res, err := p.finish(ctx, doc, a, ts)
		if err != nil {
			return device.ReceiptResult{}, fmt.Errorf("print receipt %s: finish open receipt: %w", doc.ID, err)
		}
		log.Info().Int(logkey.ReceiptNo, res.Number).Msg("open receipt finished")
		return res, p.done(ctx, a, res)
	}
	if ts.Open != device.NoReceiptOpen {
		// A receipt without payment (ours or not) is voided; someone else's
		// paid receipt is completed in cash, as ErpNet.FP's /reset does.
		if ts, err = p.clearOpen(ctx, ts); err != nil {
			return device.ReceiptResult{}, fmt.Errorf("print receipt %s: clear open receipt: %w", doc.ID, err)
		}
		log.Info().Int(logkey.ReceiptNo, ts.Number).Msg("open receipt cleared")
	}
	if known {
		switch {
		case ts.Number == a.Before:
			// Nothing of this document reached the fiscal memory.
		case ts.Number == a.Before+1 && ts.Amount == expectedAmount(doc, a):
			res := device.ReceiptResult{ID: doc.ID, Number: ts.Number, Amount: ts.Amount, Recovered: true}
			if lr, err := p.LastReceipt(ctx); err == nil && lr.Number == ts.Number {
				res.Time = lr.Time
			}
			if err := p.fiscalFields(ctx, doc, &res); err != nil {
				return device.ReceiptResult{}, fmt.Errorf("print receipt %s: %w", doc.ID, err)
			}
			log.Info().Int(logkey.ReceiptNo, res.Number).Msg("receipt found already printed")
			return res, p.done(ctx, a, res)
		default:
			return device.ReceiptResult{}, fmt.Errorf("print receipt %s: last receipt %d amount %s, attempt started after %d: %w",
				doc.ID, ts.Number, FormatAmount(ts.Amount), a.Before, device.ErrPrintUncertain)
		}
	}

	a = device.PrintAttempt{ID: doc.ID, Before: ts.Number}
	if err := p.opts.Ledger.SaveAttempt(ctx, a); err != nil {
		return device.ReceiptResult{}, fmt.Errorf("print receipt %s: save attempt: %w", doc.ID, err)
	}
	res, err := p.printBody(ctx, doc, a)
	if err != nil {
		return device.ReceiptResult{}, fmt.Errorf("print receipt %s: %w", doc.ID, err)
	}
	log.Debug().Int(logkey.ReceiptNo, res.Number).Msg("receipt printed")
	return res, p.done(ctx, a, res)
}

func validateReceipt(doc device.Receipt) error {
	if doc.ID == "" {
		return errors.New("document ID required")
	}
	if u := unp(doc); u != "" {
		if err := ValidateUNP(u); err != nil {
			return err
		}
	}
	// Everything that the printer would refuse for the document's own
	// sake is refused here, before a receipt is opened: a receipt that
	// cannot be paid in full can never be closed nor, once paid in part,
	// cancelled.
	items := 0
	for i, l := range doc.Lines {
		it := l.Item
		switch {
		case it.Name != "" && l.Comment != "":
			return fmt.Errorf("line %d: both item and comment", i+1)
		case it.Name != "":
			items++
			if it.VATGroup < 1 || it.VATGroup > 8 || len([]rune(it.Name)) > maxItemName ||
				it.UnitPrice < 0 || it.Quantity < 0 || !it.Discount.Kind.Valid() || it.Discount.Value < 0 {
				return fmt.Errorf("line %d: invalid item %+v", i+1, it)
			}
		case l.Comment == "":
			return fmt.Errorf("line %d: empty", i+1)
		}
	}
	if items == 0 {
		return errors.New("no items")
	}
	if !doc.Discount.Kind.Valid() || doc.Discount.Value < 0 {
		return fmt.Errorf("invalid receipt modifier %+v", doc.Discount)
	}
	total := ReceiptTotal(doc)
	if total <= 0 {
		return fmt.Errorf("total %s not positive", FormatAmount(total))
	}
	var paid int64
	rest := len(doc.Payments) == 0
	for i, pay := range doc.Payments {
		if pay.Mode < device.PayCash || pay.Mode > device.PayOther5 || pay.Amount < 0 {
			return fmt.Errorf("payment %d: invalid %+v", i+1, pay)
		}
		paid += pay.Amount
		rest = rest || pay.Amount == 0
	}
	if !rest && paid < total {
		return fmt.Errorf("payments %s do not cover the total %s", FormatAmount(paid), FormatAmount(total))
	}
	return nil
}

func (p *Printer) done(ctx context.Context, a device.PrintAttempt, res device.ReceiptResult) error {
	a.Done, a.Result = true, res
	if err := p.opts.Ledger.SaveAttempt(ctx, a); err != nil {
		// The receipt is printed; the next call finds it on the printer.
		return fmt.Errorf("print receipt %s: save result: %w", a.ID, err)
	}
	return nil
}

// printBody prints the whole document on a printer with no open receipt.
func (p *Printer) printBody(ctx context.Context, doc device.Receipt, a device.PrintAttempt) (device.ReceiptResult, error) {
	var err error
	if doc.Storno != nil {
		_, err = p.OpenStorno(ctx, *doc.Storno)
	} else {
		_, err = p.OpenReceipt(ctx, doc.Header)
	}
	if err != nil {
		return device.ReceiptResult{}, err
	}
	for _, l := range doc.Lines {
		var err error
		if l.Comment != "" {
			err = p.AddComment(ctx, l.Comment)
		} else {
			err = p.AddItem(ctx, l.Item)
		}
		if err != nil {
			return device.ReceiptResult{}, err
		}
	}
	if doc.Discount.Kind != device.NoModifier {
		if _, err := p.Subtotal(ctx, doc.Discount); err != nil {
			return device.ReceiptResult{}, err
		}
	}
	// The footer goes before the first payment, not after it. Before a
	// payment an interrupted receipt is cancelled and printed again from
	// the start; after one it can only be completed, and the printer
	// cannot say which comment lines it already printed, so a footer
	// after the payments would be sent again on resume (a retried receipt
	// carried its IIC twice). Printed here, a receipt that has a payment
	// always has its whole footer.
	for _, f := range doc.Footer {
		if err := p.AddComment(ctx, f); err != nil {
			return device.ReceiptResult{}, err
		}
	}
	ts := device.TransactionStatus{}
	return p.payAndClose(ctx, doc, a, ts)
}

// finish completes our open receipt that already has a payment.
func (p *Printer) finish(ctx context.Context, doc device.Receipt, a device.PrintAttempt, ts device.TransactionStatus) (device.ReceiptResult, error) {
	res, err := p.payAndClose(ctx, doc, a, ts)
	res.Recovered, res.Finished = true, true
	return res, err
}

// payAndClose registers the payments not yet in ts.Paid, records the
// printer's total and closes. The footer is printed before it (printBody).
func (p *Printer) payAndClose(ctx context.Context, doc device.Receipt, a device.PrintAttempt, ts device.TransactionStatus) (device.ReceiptResult, error) {
	pays := doc.Payments
	if len(pays) == 0 {
		pays = []device.Payment{{Mode: device.PayCash}}
	}
	paid := ts.Paid
	for _, pay := range pays {
		if pay.Amount > 0 && paid >= pay.Amount {
			paid -= pay.Amount // registered before the interruption
			continue
		}
		if pay.Amount > 0 {
			pay.Amount -= paid
		}
		paid = 0
		r, err := p.AddPayment(ctx, pay)
		if err != nil {
			return device.ReceiptResult{}, err
		}
		if r.Due == 0 {
			break
		}
	}
	open, err := p.Transaction(ctx)
	if err != nil {
		return device.ReceiptResult{}, err
	}
	if open.Paid < open.Amount {
		return device.ReceiptResult{}, fmt.Errorf("payments %s short of total %s", FormatAmount(open.Paid), FormatAmount(open.Amount))
	}
	a.Amount = open.Amount
	if err := p.opts.Ledger.SaveAttempt(ctx, a); err != nil {
		return device.ReceiptResult{}, fmt.Errorf("save attempt: %w", err)
	}
	slip, err := p.CloseReceipt(ctx)
	if err != nil {
		return device.ReceiptResult{}, err
	}
	res := device.ReceiptResult{ID: doc.ID, Slip: slip, Number: open.Number, Amount: open.Amount}
	if lr, err := p.LastReceipt(ctx); err == nil && lr.Number == open.Number {
		res.Time = lr.Time
	}
	// The receipt is closed. If the read-back fails, the attempt stays
	// unfinished: the next call finds the receipt printed (step 5) and
	// reads back again, never printing it twice.
	if err := p.fiscalFields(ctx, doc, &res); err != nil {
		return device.ReceiptResult{}, err
	}
	return res, nil
}

// fiscalFields adds the fiscal memory number and, for a receipt with a
// unique sale number (Bulgaria), the UNP, document number and QR data.
func (p *Printer) fiscalFields(ctx context.Context, doc device.Receipt, res *device.ReceiptResult) error {
	res.FiscalMemorySerial = p.info.FiscalMemory
	if res.UNP = unp(doc); res.UNP == "" {
		return nil
	}
	return p.readBack(ctx, res)
}

// clearOpen voids an open receipt without payment, or completes a paid one
// in cash, and returns the transaction status afterwards.
func (p *Printer) clearOpen(ctx context.Context, ts device.TransactionStatus) (device.TransactionStatus, error) {
	if ts.Paid == 0 {
		if err := p.CancelReceipt(ctx); err != nil {
			return ts, err
		}
	} else {
		if ts.Paid < ts.Amount {
			if _, err := p.AddPayment(ctx, device.Payment{Mode: device.PayCash}); err != nil {
				return ts, err
			}
		}
		if _, err := p.CloseReceipt(ctx); err != nil {
			return ts, err
		}
	}
	return p.Transaction(ctx)
}

// expectedAmount is the total the printer recorded for the attempt or, if
// the attempt ended before that, the total computed from the document.
func expectedAmount(doc device.Receipt, a device.PrintAttempt) int64 {
	if a.Amount != 0 {
		return a.Amount
	}
	return ReceiptTotal(doc)
}

// ReceiptTotal computes a receipt's total the way the printer does: each
// line is price × quantity rounded half away from zero to minor units, then
// its own modifier; the receipt-level modifier applies to the sum.
func ReceiptTotal(doc device.Receipt) int64 {
	var sum int64
	for _, l := range doc.Lines {
		if l.Item.Name == "" {
			continue
		}
		qty := l.Item.Quantity
		if qty == 0 {
			qty = 1000
		}
		sum += ApplyModifier(RoundDiv(l.Item.UnitPrice*qty, 1000), l.Item.Discount)
	}
	return ApplyModifier(sum, doc.Discount)
}

// ApplyModifier applies a discount or surcharge to an amount.
func ApplyModifier(v int64, m device.Modifier) int64 {
	switch m.Kind {
	case device.SurchargePercent:
		return v + RoundDiv(v*m.Value, 10000)
	case device.DiscountPercent:
		return v - RoundDiv(v*m.Value, 10000)
	case device.SurchargeAmount:
		return v + m.Value
	case device.DiscountAmount:
		return v - m.Value
	}
	return v
}

// RoundDiv divides by b > 0, rounding half away from zero.
func RoundDiv(a, b int64) int64 {
	if a < 0 {
		return -((-a + b/2) / b)
	}
	return (a + b/2) / b
}
