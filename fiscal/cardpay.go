package fiscal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrPaymentNotFound is what a PaymentReader returns for an id it does
// not know.
var ErrPaymentNotFound = errors.New("payment not found")

// LinkedPayment is a card payment as an invoice links it: what the
// invoice's checks need of it.
type LinkedPayment struct {
	ID       string
	Type     string // "sale", "refund", "reversal"
	Status   string // "completed" is the only one an invoice may link
	Amount   int64  // minor units, positive
	Currency string
	Reversed bool // a reversal voided it
}

// PaymentReader reads a card payment in the invoice's transaction.
// Returns ErrPaymentNotFound if there is none. cmd/posgate adapts
// payment.ReadTx.
type PaymentReader func(ctx context.Context, tx *sql.Tx, id string) (LinkedPayment, error)

// checkCardPaymentsTx checks that each card payment of a sale or refund
// invoice that names a payment_id settles a real, matching payment: it
// exists, is completed and not reversed, is a sale for a sale invoice
// (a refund for a refund invoice), is in the invoice's currency, and
// all invoices together never claim more of it than its amount. It runs
// in the invoice's transaction, so two invoices cannot both claim the
// last of one payment. A card payment without payment_id was taken on a
// terminal posgate does not drive and is not checked.
func (s *Invoices) checkCardPaymentsTx(ctx context.Context, tx *sql.Tx, typ string, pays []Payment) error {
	claim := map[string]int64{} // this invoice's claim per payment, positive
	for i, p := range pays {
		if p.Type != PayCard || p.PaymentID == "" {
			continue
		}
		f := fmt.Sprintf("payments[%d]", i)
		if s.opts.Payments == nil {
			return unprocessable(f+".payment_id", "card payments cannot be linked: posgate keeps no payments here")
		}
		lp, err := s.opts.Payments(ctx, tx, p.PaymentID)
		if errors.Is(err, ErrPaymentNotFound) {
			return unprocessable(f+".payment_id", "no payment %q", p.PaymentID)
		}
		if err != nil {
			return fmt.Errorf("read payment %s: %w", p.PaymentID, err)
		}
		want := TypeSale
		if typ == TypeRefund {
			want = "refund"
		}
		switch {
		case lp.Type != want:
			return unprocessable(f+".payment_id", "%s is a %s payment; a %s invoice links a card %s", lp.ID, lp.Type, typ, want)
		case lp.Status != "completed":
			return unprocessable(f+".payment_id", "%s is %s, not completed", lp.ID, lp.Status)
		case lp.Reversed:
			return unprocessable(f+".payment_id", "%s was reversed", lp.ID)
		case lp.Currency != s.opts.Currency:
			return unprocessable(f+".payment_id", "%s is in %s, the invoice in %s", lp.ID, lp.Currency, s.opts.Currency)
		}
		var claimed int64 // by other invoices, signed like their amounts
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(amount), 0) FROM invoice_card_payments WHERE payment_id = ?",
			p.PaymentID).Scan(&claimed); err != nil {
			return fmt.Errorf("sum claims of payment %s: %w", p.PaymentID, err)
		}
		if typ == TypeRefund {
			claimed = -claimed
		}
		claim[p.PaymentID] += p.Amount
		if left := lp.Amount - claimed; claim[p.PaymentID] > left {
			return unprocessable(f+".amount", "%s of payment %s (%s) is left to claim, not %s", Money(max(left, 0)), lp.ID, Money(lp.Amount), Money(claim[p.PaymentID]))
		}
	}
	return nil
}

// insertCardClaimsTx records the card payments inv claims, signed like
// its amounts (a void gives its sale's claims back).
func insertCardClaimsTx(ctx context.Context, tx *sql.Tx, inv Invoice) error {
	sums := map[string]int64{}
	var ids []string
	for _, p := range inv.Payments {
		if p.Type != PayCard || p.PaymentID == "" {
			continue
		}
		if _, ok := sums[p.PaymentID]; !ok {
			ids = append(ids, p.PaymentID)
		}
		sums[p.PaymentID] += p.Amount
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, "INSERT INTO invoice_card_payments (invoice_id, payment_id, amount) VALUES (?, ?, ?)",
			inv.ID, id, sums[id]); err != nil {
			return fmt.Errorf("record card payment %s of %s: %w", id, inv.ID, err)
		}
	}
	return nil
}
