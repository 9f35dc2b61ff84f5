package api

import (
	"errors"
	"net/http"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/logkey"
)

// CodeNotRetryable: a registration that is pending or completed needs
// no manual retry.
const CodeNotRetryable = "REGISTRATION_NOT_RETRYABLE"

func registrationsOff() *Error {
	return &Error{Code: CodeUnavailable, Message: "registration with a tax service is not configured on this device ([fiscal] country me or al)"}
}

// registrationError maps fiscal's registration errors to client errors.
func registrationError(err error) error {
	switch {
	case errors.Is(err, fiscal.ErrRegistrationNotFound):
		return notFound("registration")
	case errors.Is(err, fiscal.ErrNotRetryable):
		return &Error{Code: CodeNotRetryable, Message: err.Error()}
	}
	return err
}

// handleFiscalizationRetry puts a dead or refused registration back in
// the queue (admin).
func handleFiscalizationRetry(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Registrations == nil {
			writeError(w, r, d.Log, registrationsOff())
			return
		}
		id := r.PathValue("id")
		st, err := d.Registrations.Retry(r.Context(), id)
		if err != nil {
			writeError(w, r, d.Log, registrationError(err))
			return
		}
		d.Log.Info().Str(logkey.InvoiceID, id).Msg("registration retried by hand")
		writeJSON(w, http.StatusOK, fiscalizationRetryResponse{InvoiceID: id, Fiscalization: st})
	})
}

// registrationResponse is a TCR or cash deposit registration as
// POST /v1/fiscal/… and GET /v1/fiscal/registrations/{id} return it.
// cashDepositRequest is the body of POST /v1/fiscal/cash-deposits.
type cashDepositRequest struct {
	Operation string `json:"operation"` // INITIAL or WITHDRAW
	Amount    int64  `json:"amount"`    // minor units
}

// fiscalizationRetryResponse answers a manual registration retry.
type fiscalizationRetryResponse struct {
	InvoiceID     string                     `json:"invoice_id"`
	Fiscalization fiscal.FiscalizationStatus `json:"fiscalization"`
}

type registrationResponse struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Code is the TCR code or deposit code (FCDC) once registered.
	fiscal.FiscalizationStatus
}

func registrationOut(id, kind string, st fiscal.FiscalizationStatus) registrationResponse {
	return registrationResponse{ID: id, Kind: kind, FiscalizationStatus: st}
}

// handleTCRRegister queues RegisterTCR, signed with the certificate
// bound to the caller's key (admin). 202: the worker registers it; poll
// GET /v1/fiscal/registrations/{id} for the TCR code.
func handleTCRRegister(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Registrations == nil {
			writeError(w, r, d.Log, registrationsOff())
			return
		}
		var req fiscal.TCRRegistration
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		key := keyFrom(r.Context())
		if key.CertificateID == nil {
			writeError(w, r, d.Log, invoiceError(fiscal.ErrNoCertificate))
			return
		}
		id, err := d.Registrations.RegisterTCR(r.Context(), req, *key.CertificateID)
		if err != nil {
			writeError(w, r, d.Log, invoiceError(err))
			return
		}
		st, err := d.Registrations.Status(r.Context(), id)
		if err != nil {
			writeError(w, r, d.Log, registrationError(err))
			return
		}
		writeJSON(w, http.StatusAccepted, registrationOut(id, fiscal.KindTCR, st))
	})
}

// handleCashDeposit queues RegisterCashDeposit: the day's initial cash
// or a withdrawal.
func handleCashDeposit(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Registrations == nil {
			writeError(w, r, d.Log, registrationsOff())
			return
		}
		var req cashDepositRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		key := keyFrom(r.Context())
		if key.CertificateID == nil {
			writeError(w, r, d.Log, invoiceError(fiscal.ErrNoCertificate))
			return
		}
		id, err := d.Registrations.RegisterCashDeposit(r.Context(), fiscal.CashDeposit{Operation: req.Operation, Amount: req.Amount}, *key.CertificateID)
		if err != nil {
			writeError(w, r, d.Log, invoiceError(err))
			return
		}
		st, err := d.Registrations.Status(r.Context(), id)
		if err != nil {
			writeError(w, r, d.Log, registrationError(err))
			return
		}
		writeJSON(w, http.StatusAccepted, registrationOut(id, fiscal.KindCashDeposit, st))
	})
}

// handleRegistrationGet shows a TCR, cash deposit or invoice registration.
func handleRegistrationGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Registrations == nil {
			writeError(w, r, d.Log, registrationsOff())
			return
		}
		id := r.PathValue("id")
		kind, st, err := d.Registrations.Get(r.Context(), id)
		if err != nil {
			writeError(w, r, d.Log, registrationError(err))
			return
		}
		writeJSON(w, http.StatusOK, registrationOut(id, kind, st))
	})
}
