package fiscal

import (
	"context"
	"time"
)

// RegisterTCR validates and queues a RegisterTCR signed with the
// certificate certificateID; it returns the registration's id.
func (r *Registrations) RegisterTCR(ctx context.Context, t TCRRegistration, certificateID string) (string, error) {
	if n := len(t.InternalID); n == 0 || n > 50 {
		return "", invalid("internal_id", "give the device's own id, 1 to 50 characters")
	}
	if t.ValidFrom != "" {
		if _, err := time.Parse("2006-01-02", t.ValidFrom); err != nil {
			return "", invalid("valid_from", "%q is not a date YYYY-MM-DD", t.ValidFrom)
		}
	}
	switch t.Type {
	case "", "regular", "vending":
	default:
		return "", invalid("type", "%q: want regular or vending", t.Type)
	}
	id := "tcr_" + randomID()
	return id, r.Enqueue(ctx, id, KindTCR, certificateID, t)
}

// RegisterCashDeposit validates and queues a RegisterCashDeposit (the
// day's initial cash, or a withdrawal) stamped now.
func (r *Registrations) RegisterCashDeposit(ctx context.Context, d CashDeposit, certificateID string) (string, error) {
	switch d.Operation {
	case CashInitial:
		if d.Amount < 0 {
			return "", invalid("amount", "cannot be negative")
		}
	case CashWithdraw:
		if d.Amount <= 0 {
			return "", invalid("amount", "a withdrawal takes more than 0")
		}
	default:
		return "", invalid("operation", "%q: want initial or withdraw", d.Operation)
	}
	if d.Amount > MaxUnitPrice {
		return "", invalid("amount", "at most %s", Money(MaxUnitPrice))
	}
	d.At = r.opts.Now().Truncate(time.Second)
	id := "dep_" + randomID()
	return id, r.Enqueue(ctx, id, KindCashDeposit, certificateID, d)
}
