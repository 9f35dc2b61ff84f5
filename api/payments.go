package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/store"
)

// Payment error codes (statuses in statusOf).
const (
	CodeTerminalBusy          = "TERMINAL_BUSY"
	CodeTerminalOffline       = "TERMINAL_OFFLINE"
	CodePaymentNotCancellable = "PAYMENT_NOT_CANCELLABLE"
	CodePaymentReversed       = "PAYMENT_ALREADY_REVERSED"
	CodePaymentHasRefunds     = "PAYMENT_HAS_REFUNDS"
)

// maxWait caps ?wait= on GET /v1/payments/{id}; it stays below the
// server's WriteTimeout.
const maxWait = 60 * time.Second

func handlePaymentCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Payments == nil {
			writeError(w, r, d.Log, paymentsOff())
			return
		}
		var req payment.NewPayment
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		key := keyFrom(r.Context())
		c := payment.Caller{KeyID: key.ID, IdempotencyKey: IdempotencyKey(r.Context())}
		// The answer is kept for retries in the payment's own transaction:
		// one commit before the terminal gets its first byte.
		var body []byte
		c.CompleteTx = func(ctx context.Context, tx *sql.Tx, p payment.Payment) (err error) {
			body, err = keepJSONTx(r.Context(), tx, http.StatusCreated, p)
			return err
		}
		p, err := d.Payments.Create(r.Context(), req, c)
		if err != nil {
			writeError(w, r, d.Log, paymentError(err))
			return
		}
		d.Log.Debug().Str(logkey.PaymentID, p.ID).Str(logkey.KeyID, key.ID).Msg("payment accepted")
		w.Header().Set("Location", "/v1/payments/"+p.ID)
		if body == nil {
			writeJSON(w, http.StatusCreated, p)
			return
		}
		writeJSONBody(w, http.StatusCreated, body)
	})
}

func handlePaymentGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Payments == nil {
			writeError(w, r, d.Log, paymentsOff())
			return
		}
		var wait time.Duration
		if s := r.URL.Query().Get("wait"); s != "" {
			var err error
			if wait, err = parseWait(s); err != nil {
				writeError(w, r, d.Log, err)
				return
			}
		}
		p, err := d.Payments.Wait(r.Context(), r.PathValue("id"), wait)
		if err != nil {
			writeError(w, r, d.Log, paymentError(err))
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
}

// parseWait reads ?wait=: a Go duration ("30s") or whole seconds ("30"),
// from 0 to maxWait. Seconds are bounded before they become a Duration,
// so a huge number is a bounds error, never an overflow to a negative.
func parseWait(s string) (time.Duration, error) {
	bad := validationError("wait", fmt.Sprintf("must be from 0s to %s: a duration such as 30s, or whole seconds", maxWait))
	d, err := time.ParseDuration(s)
	if err != nil {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > int64(maxWait/time.Second) {
			return 0, bad
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > maxWait {
		return 0, bad
	}
	return d, nil
}

func handlePaymentList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Payments == nil {
			writeError(w, r, d.Log, paymentsOff())
			return
		}
		since, cursor, limit, err := listParams(r)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		p := payment.ListParams{Cursor: cursor, Since: since, Limit: limit}
		ps, next, err := d.Payments.List(r.Context(), p)
		if err != nil {
			writeError(w, r, d.Log, paymentError(err))
			return
		}
		writeList(w, ps, next)
	})
}

// handlePaymentCancel sends Abort for a payment in progress. The answer
// is 202 while the terminal has not ended it yet (poll with ?wait=),
// 200 once it has.
func handlePaymentCancel(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Payments == nil {
			writeError(w, r, d.Log, paymentsOff())
			return
		}
		p, err := d.Payments.Cancel(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Log, paymentError(err))
			return
		}
		status := http.StatusOK
		if !p.Status.Final() {
			status = http.StatusAccepted
		}
		writeJSON(w, status, p)
	})
}

func paymentsOff() error {
	return &Error{Code: CodeUnavailable, Message: "payments are not configured: add a [[terminals]] section"}
}

// paymentError maps payment's errors to client errors.
func paymentError(err error) error {
	var ve *payment.ValidationError
	switch {
	case store.Unavailable(err):
		return err // a terminal not ready because the store fails: writeError's STORE_UNAVAILABLE
	case errors.As(err, &ve):
		return validationError(ve.Field, ve.Message)
	case errors.Is(err, payment.ErrNotFound):
		return notFound("payment")
	case errors.Is(err, payment.ErrBadCursor):
		return validationError("cursor", "is not a cursor from a previous page")
	case errors.Is(err, payment.ErrTerminalBusy):
		return &Error{Code: CodeTerminalBusy, Message: err.Error()}
	case errors.Is(err, payment.ErrTerminalOffline):
		return &Error{Code: CodeTerminalOffline, Message: err.Error()}
	case errors.Is(err, payment.ErrIdempotencyReused):
		return &Error{Code: CodeIdempotencyReused, Message: "Idempotency-Key was already used with a different payment",
			Details: map[string]any{"field": "Idempotency-Key"}}
	case errors.Is(err, payment.ErrNotCancellable):
		return &Error{Code: CodePaymentNotCancellable, Message: err.Error()}
	case errors.Is(err, payment.ErrAlreadyReversed):
		return &Error{Code: CodePaymentReversed, Message: err.Error(), Details: map[string]any{"field": "original_payment_id"}}
	case errors.Is(err, payment.ErrHasRefunds):
		return &Error{Code: CodePaymentHasRefunds, Message: err.Error(), Details: map[string]any{"field": "original_payment_id"}}
	}
	return err
}
