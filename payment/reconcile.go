package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
)

// reconcile resolves the payment r that a crash or a lost line left open
// on t, before t takes new work (research/payment-protocols.md §1.12).
//
// The rule it leans on: the terminal commits a transaction only once
// posgate has acknowledged its Status-Information, and posgate persists
// that Status-Information before acknowledging it. So a payment with no
// approved Status-Information on record cannot have been charged. One
// with it is compared with what Repeat Receipt reports as the terminal's
// last transaction: the same trace number means the terminal committed
// it, and a sale is then reversed, since its cashier never got the
// answer; a reversal of it means that already happened; an older trace
// means the terminal reversed it itself. Anything else needs a person.
//
// An interrupted payment still pending (its start was not recorded, so
// it never went out) or in progress ends as timeout (the cashier
// got no answer in time) with payment.timeout, then gets its resolution.
// It returns an error, to be retried, while the terminal cannot answer.
func (s *Service) reconcile(ctx context.Context, t *term, r *record) error {
	log := s.log.With().Str(logkey.PaymentID, r.ID).Str(logkey.DeviceID, t.cfg.ID).Logger()
	log.Warn().Str("status", string(r.Status)).Msg("reconciling an interrupted payment")
	var last *device.TxInfo
	res, err := t.cfg.Device.RepeatLastResult(ctx, func(_ context.Context, e device.TxEvent) error {
		if e.Kind == device.EventStatusInfo && e.Info != nil {
			last = e.Info
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("repeat receipt on %s: %w", t.cfg.ID, err)
	}
	if last == nil {
		last = res.Info
	}
	id := r.ID
	r, err = s.update(ctx, id, func(tx *sql.Tx, r *record) ([]string, error) {
		if r.Status != StatusInProgress && r.Status != StatusPending {
			return nil, errUnchanged
		}
		now := s.now()
		r.Status, r.EndedAt = StatusTimeout, &now
		r.ResultText = "interrupted; reconciled with the terminal's last transaction"
		return []string{EventTimeout}, nil
	})
	if errors.Is(err, errUnchanged) {
		r, err = getRecord(ctx, s.db.Read, id)
	}
	if err != nil {
		return err
	}

	rec := r.Info
	evidence := func(reason string) *Evidence {
		return &Evidence{Reason: reason, Recorded: terminalRecord(rec), Terminal: terminalRecord(last)}
	}
	var fn func(tx *sql.Tx, r *record) ([]string, error)
	switch {
	case last != nil && last.SaleRef != "":
		// The terminal names posgate's reference of its last payment
		// (nexo). That alone says whether this payment reached it and how
		// it ended, whatever posgate recorded: such a terminal commits
		// without posgate's acknowledgement.
		fn, err = s.reconcileByRef(ctx, t, r, last, evidence)
		if err != nil {
			return err
		}
	case rec == nil || rec.ResultCode != 0:
		fn = func(tx *sql.Tx, r *record) ([]string, error) {
			return s.closeNotCharged(r, "", evidence("no approved Status-Information was acknowledged, so the terminal did not commit")), nil
		}
	case last != nil && last.ResultCode == 0 && rec.Trace != 0 && last.OrigTrace == rec.Trace:
		fn = func(tx *sql.Tx, r *record) ([]string, error) {
			r.Evidence = evidence("the terminal's last transaction reverses this one")
			return s.closeReversed(r, "auto", last), nil
		}
	case last != nil && last.ResultCode == 0 && last.Trace == rec.Trace:
		if r.Type != TypeSale || rec.ReceiptNo == 0 {
			fn = func(tx *sql.Tx, r *record) ([]string, error) {
				return s.needsReview(r, "the terminal committed it, but only sales are reversed automatically", last, nil), nil
			}
			break
		}
		rv, err := t.cfg.Device.Reverse(ctx, rec.ReceiptNo, s.handler(t, r.ID, true))
		if err != nil {
			return fmt.Errorf("reverse receipt %d on %s: %w", rec.ReceiptNo, t.cfg.ID, err)
		}
		fn = func(tx *sql.Tx, r *record) ([]string, error) {
			if rv.Outcome != device.Approved {
				return s.needsReview(r, fmt.Sprintf("the terminal committed it and refused its reversal: %02X %s", rv.Code, rv.Message), last, nil), nil
			}
			r.Evidence = evidence("the terminal committed it after posgate lost the answer; reversed")
			return s.closeReversed(r, "auto", rv.Info), nil
		}
	case last != nil && last.Trace < rec.Trace:
		fn = func(tx *sql.Tx, r *record) ([]string, error) {
			return s.closeNotCharged(r, "", evidence("the terminal's last transaction is older: it reversed this one itself")), nil
		}
	default:
		fn = func(tx *sql.Tx, r *record) ([]string, error) {
			return s.needsReview(r, "the terminal's last transaction does not match the approval posgate recorded", last, nil), nil
		}
	}
	r, err = s.updateQuiet(ctx, id, fn) // watchers wake once the terminal is ready
	if err != nil {
		return err
	}
	log.Warn().Str("resolution", string(r.Resolution)).Msg("interrupted payment reconciled")
	return nil
}

// reconcileByRef resolves r from the terminal's last payment last, which
// carries posgate's reference (SaleRef): another payment's means r never
// reached the terminal; r's own approved sale is reversed by reference.
func (s *Service) reconcileByRef(ctx context.Context, t *term, r *record, last *device.TxInfo,
	evidence func(string) *Evidence) (func(tx *sql.Tx, r *record) ([]string, error), error) {
	switch {
	case r.Type == TypeReversal || (r.Type == TypeRefund && r.OriginalPaymentID != ""):
		// The terminal reports its last payment, not its last reversal.
		return func(tx *sql.Tx, r *record) ([]string, error) {
			return s.needsReview(r, "a reversal or referenced refund was interrupted; its outcome is in the acquirer's records", last, nil), nil
		}, nil
	case last.SaleRef != r.ID:
		return func(tx *sql.Tx, r *record) ([]string, error) {
			return s.closeNotCharged(r, "", evidence("the terminal's last payment is another one: this one never reached it")), nil
		}, nil
	case last.ResultCode != 0:
		return func(tx *sql.Tx, r *record) ([]string, error) {
			r.setInfo(last)
			return s.closeNotCharged(r, "", evidence("the terminal ended it without approval")), nil
		}, nil
	case r.Type != TypeSale || last.Ref == "":
		return func(tx *sql.Tx, r *record) ([]string, error) {
			r.setInfo(last)
			return s.needsReview(r, "the terminal committed it, but only sales are reversed automatically", last, nil), nil
		}, nil
	}
	rv, err := reverseInfo(ctx, t.cfg.Device, last, last.ReceiptNo, s.handler(t, r.ID, true))
	if err != nil {
		return nil, fmt.Errorf("reverse %s on %s: %w", r.ID, t.cfg.ID, err)
	}
	return func(tx *sql.Tx, r *record) ([]string, error) {
		r.setInfo(last)
		if rv.Outcome != device.Approved {
			return s.needsReview(r, fmt.Sprintf("the terminal committed it and refused its reversal: %d %s", rv.Code, rv.Message), last, nil), nil
		}
		r.Evidence = evidence("the terminal committed it after posgate lost the answer; reversed")
		return s.closeReversed(r, "auto", rv.Info), nil
	}, nil
}
