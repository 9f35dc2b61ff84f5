package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/posgate/posgate/device"
)

// Pre-authorisation types (issue 12): a reservation on the card that a
// later payment books or releases. They need a terminal that implements
// device.PreAuthTerminal (ZVT 06 22 / 06 24 / 06 25).
const (
	TypePreAuth           Type = "preauth"            // reserve amount
	TypePreAuthCompletion Type = "preauth_completion" // book amount (at most the reservation) of original_payment_id
	TypePreAuthReversal   Type = "preauth_reversal"   // release the whole reservation original_payment_id
	// TypePreAuthPartialReversal releases amount, the unused part of
	// reservation original_payment_id, and books the rest (ZVT 06 23,
	// PA00P015 §2.10).
	TypePreAuthPartialReversal Type = "preauth_partial_reversal"
)

// Reservation is what a completed pre-authorisation holds: the amount
// reserved, and once a booking, partial reversal or release of it
// completed, how much was booked and released. A reservation is closed
// by the first of them (§2.10.1: a pre-authorisation is open until its
// Partial-Reversal or Book Total), so Remaining is then 0.
type Reservation struct {
	Reserved  int64  `json:"reserved"`
	Booked    int64  `json:"booked"`
	Released  int64  `json:"released"`
	Remaining int64  `json:"remaining"`
	ClosedBy  string `json:"closed_by,omitempty"` // the payment that booked or released it
}

// isPreAuthType reports the types that need a pre-authorising terminal.
func isPreAuthType(t Type) bool {
	return t == TypePreAuth || t == TypePreAuthCompletion || t == TypePreAuthReversal || t == TypePreAuthPartialReversal
}

// closesPreAuth reports the types that book or release a reservation.
func closesPreAuth(t Type) bool {
	return t == TypePreAuthCompletion || t == TypePreAuthReversal || t == TypePreAuthPartialReversal
}

// validatePreAuth checks a pre-authorisation request on its own.
func validatePreAuth(req *NewPayment) error {
	switch req.Type {
	case TypePreAuth:
		if req.Amount <= 0 || req.Amount > MaxAmount {
			return invalid("amount", "must be 1 to %d minor units (1234 = 12.34)", int64(MaxAmount))
		}
		if req.OriginalPaymentID != "" {
			return invalid("original_payment_id", "is only for a refund, reversal or the completion or reversal of a preauth")
		}
	case TypePreAuthCompletion:
		if req.OriginalPaymentID == "" {
			return invalid("original_payment_id", "is required: the preauth to book")
		}
		if req.Amount <= 0 || req.Amount > MaxAmount {
			return invalid("amount", "must be the amount to book, 1 to the reserved amount")
		}
	case TypePreAuthPartialReversal:
		if req.OriginalPaymentID == "" {
			return invalid("original_payment_id", "is required: the preauth to reverse in part")
		}
		if req.Amount <= 0 || req.Amount > MaxAmount {
			return invalid("amount", "must be the unused amount to release, 1 to less than the reserved amount")
		}
	case TypePreAuthReversal:
		if req.OriginalPaymentID == "" {
			return invalid("original_payment_id", "is required: the preauth to release")
		}
		if req.Amount < 0 || req.Amount > MaxAmount {
			return invalid("amount", "must be the reserved amount or left out")
		}
	}
	return nil
}

// checkPreAuth checks a pre-authorisation request against its terminal and
// the reservation it books or releases, and fills a release's amount.
func checkPreAuth(req *NewPayment, t Terminal, orig *record) error {
	if _, ok := t.Device.(device.PreAuthTerminal); !ok {
		return invalid("type", "terminal %s cannot pre-authorise", t.ID)
	}
	if req.Type == TypePreAuth {
		return nil
	}
	switch {
	case orig == nil:
		return invalid("original_payment_id", "is required")
	case orig.Type != TypePreAuth:
		return invalid("original_payment_id", "%s is a %s, not a preauth", orig.ID, orig.Type)
	case orig.Status != StatusCompleted:
		return invalid("original_payment_id", "%s is %s, not completed", orig.ID, orig.Status)
	case orig.TerminalID != req.TerminalID:
		return invalid("terminal_id", "a preauth is booked or released on its own terminal, %s", orig.TerminalID)
	case orig.ReceiptNumber == 0:
		return invalid("original_payment_id", "%s has no receipt number", orig.ID)
	}
	if req.Type == TypePreAuthReversal {
		if req.Amount == 0 {
			req.Amount = orig.Amount
		}
		if req.Amount != orig.Amount {
			return invalid("amount", "a preauth reversal releases the whole reservation: %d", orig.Amount)
		}
	}
	if req.Type == TypePreAuthCompletion && req.Amount > orig.Amount {
		return invalid("amount", "cannot book more than the reserved %d", orig.Amount)
	}
	if req.Type == TypePreAuthPartialReversal && req.Amount >= orig.Amount {
		return invalid("amount", "a partial reversal releases less than the reserved %d and books the rest; use preauth_reversal to release it all", orig.Amount)
	}
	return nil
}

// errPreAuthClosed refuses a second booking or release of one reservation.
var errPreAuthClosed = invalid("original_payment_id", "the preauth is already booked or released")

// preAuthClosedTx reports whether reservation id was booked or released,
// or is being (an open session); checked in the creating transaction.
func preAuthClosedTx(ctx context.Context, q querier, id string) (bool, error) {
	// A booking that timed out without a not_charged verdict may have
	// closed the reservation: it counts, as refunds do in refundedOf.
	_, err := scanRecord(q.QueryRowContext(ctx, selectRecord+`WHERE original_payment_id = ?
		AND type IN ('preauth_completion', 'preauth_reversal', 'preauth_partial_reversal')
		AND (session_open = 1 OR status = 'completed'
			OR (status = 'timeout' AND COALESCE(json_extract(doc, '$.resolution'), '') <> 'not_charged')) LIMIT 1`, id))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// runPreAuth sends a pre-authorisation payment to the terminal.
func (s *Service) runPreAuth(ctx context.Context, t *term, r *record, ch device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	d, ok := t.cfg.Device.(device.PreAuthTerminal)
	if !ok {
		return device.TxResult{}, errors.New("terminal cannot pre-authorise")
	}
	if r.Type == TypePreAuth {
		return d.PreAuthorize(ctx, ch, h)
	}
	orig, err := getRecord(ctx, s.db.Read, r.OriginalPaymentID)
	if err != nil {
		return device.TxResult{}, err
	}
	switch r.Type {
	case TypePreAuthCompletion:
		return d.BookTotal(ctx, orig.ReceiptNumber, ch, h)
	case TypePreAuthPartialReversal:
		return d.PartialReversal(ctx, orig.ReceiptNumber, ch, h)
	}
	return d.ReleasePreAuth(ctx, orig.ReceiptNumber, h)
}

// closePreAuthTx records on the reservation r booked or released how,
// in r's completing transaction. The amounts are posgate's request: the
// terminal's Status-Information is on r.
func (s *Service) closePreAuthTx(ctx context.Context, tx *sql.Tx, r *record) error {
	orig, err := getRecord(ctx, tx, r.OriginalPaymentID)
	if err != nil {
		return fmt.Errorf("read reservation: %w", err)
	}
	rv := Reservation{Reserved: orig.Amount, ClosedBy: r.ID}
	switch r.Type {
	case TypePreAuthCompletion:
		rv.Booked = min(r.Amount, orig.Amount)
	case TypePreAuthPartialReversal:
		rv.Booked = max(orig.Amount-r.Amount, 0)
	}
	rv.Released = orig.Amount - rv.Booked
	orig.Reservation = &rv
	orig.UpdatedAt = s.now()
	return saveTx(ctx, tx, orig)
}
