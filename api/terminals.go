package api

import (
	"errors"
	"net/http"

	"github.com/posgate/posgate/payment"
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
		case err != nil:
			writeError(w, r, d.Log, &Error{Code: CodeDeviceUnavailable, Message: "end of day failed: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
}
