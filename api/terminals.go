package api

import (
	"errors"
	"net/http"

	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/store"
)

// handleEndOfDay settles a terminal's batch and answers with its totals.
// It waits for the terminal, which may take a minute.
func handleEndOfDay(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Payments == nil {
			writeError(w, r, d.Log, paymentsOff())
			return
		}
		res, err := d.Payments.EndOfDay(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, payment.ErrNotFound):
			writeError(w, r, d.Log, notFound("terminal"))
			return
		case errors.Is(err, payment.ErrTerminalBusy), errors.Is(err, payment.ErrTerminalOffline):
			writeError(w, r, d.Log, paymentError(err))
			return
		case store.Unavailable(err): // not recorded, so not sent: 503 STORE_UNAVAILABLE
			writeError(w, r, d.Log, err)
			return
		case err != nil:
			writeError(w, r, d.Log, &Error{Code: CodeDeviceUnavailable, Message: "end of day failed: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}

// handleEndOfDayList lists a terminal's last end-of-days, newest first,
// with the state of each (an interrupted one shows how it was
// reconciled).
func handleEndOfDayList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Payments == nil {
			writeError(w, r, d.Log, paymentsOff())
			return
		}
		list, err := d.Payments.EndOfDays(r.Context(), r.PathValue("id"), 20)
		switch {
		case errors.Is(err, payment.ErrNotFound):
			writeError(w, r, d.Log, notFound("terminal"))
			return
		case err != nil:
			writeError(w, r, d.Log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": list, "next_cursor": ""})
	})
}

// handleReadCard has a terminal read a card for a loyalty lookup and
// answers its type and masked number (never the full number). It waits
// for the customer, up to 30 seconds. Nothing is stored.
func handleReadCard(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Payments == nil {
			writeError(w, r, d.Log, paymentsOff())
			return
		}
		res, err := d.Payments.ReadCard(r.Context(), r.PathValue("id"))
		var ve *payment.ValidationError
		switch {
		case errors.Is(err, payment.ErrNotFound):
			writeError(w, r, d.Log, notFound("terminal"))
			return
		case errors.As(err, &ve), errors.Is(err, payment.ErrTerminalBusy), errors.Is(err, payment.ErrTerminalOffline):
			writeError(w, r, d.Log, paymentError(err))
			return
		case err != nil:
			writeError(w, r, d.Log, &Error{Code: CodeDeviceUnavailable, Message: "read card failed: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}
