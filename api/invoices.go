package api

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strconv"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/logkey"
)

// Invoice error codes (statuses in statusOf).
const (
	CodeCertificateNotBound = "CERTIFICATE_NOT_BOUND"
	CodeNoCertificate       = "NO_CERTIFICATE_BOUND"
	CodeTINMismatch         = "CERTIFICATE_TIN_MISMATCH"
	CodeInvoiceReversed     = "INVOICE_ALREADY_REVERSED"
)

// qrSize is the side of GET /v1/invoices/{id}/qr.png in pixels.
const qrSize = 256

func handleInvoiceCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Invoices == nil {
			writeError(w, r, d.Log, fiscalOff())
			return
		}
		var req fiscal.NewInvoice
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		key := keyFrom(r.Context())
		c := fiscal.Caller{KeyID: key.ID, IdempotencyKey: IdempotencyKey(r.Context())}
		if key.CertificateID != nil {
			c.CertificateID = *key.CertificateID
		}
		// The answer is kept for retries in the invoice's own transaction.
		var body []byte
		c.CompleteTx = func(ctx context.Context, tx *sql.Tx, inv fiscal.Invoice) (err error) {
			body, err = keepJSONTx(r.Context(), tx, http.StatusCreated, inv)
			return err
		}
		inv, err := d.Invoices.Create(r.Context(), req, c)
		if err != nil {
			writeError(w, r, d.Log, invoiceError(err))
			return
		}
		d.Log.Info().Str(logkey.InvoiceID, inv.ID).Str("number", inv.Number).Str("iic", inv.Signature.Code).
			Str(logkey.KeyID, key.ID).Msg("invoice issued")
		if body == nil {
			writeJSON(w, http.StatusCreated, inv)
			return
		}
		writeJSONBody(w, http.StatusCreated, body)
	})
}

func handleInvoiceGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Invoices == nil {
			writeError(w, r, d.Log, fiscalOff())
			return
		}
		inv, err := d.Invoices.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Log, invoiceError(err))
			return
		}
		writeJSON(w, http.StatusOK, inv)
	})
}

func handleInvoiceList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Invoices == nil {
			writeError(w, r, d.Log, fiscalOff())
			return
		}
		since, cursor, limit, err := listParams(r)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		p := fiscal.ListParams{Cursor: cursor, Since: since, Limit: limit}
		invs, next, err := d.Invoices.List(r.Context(), p)
		if err != nil {
			writeError(w, r, d.Log, invoiceError(err))
			return
		}
		writeList(w, invs, next)
	})
}

func handleInvoiceQR(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Invoices == nil {
			writeError(w, r, d.Log, fiscalOff())
			return
		}
		inv, err := d.Invoices.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Log, invoiceError(err))
			return
		}
		png, err := fiscal.QRPNG(inv.Signature.VerifyURL, qrSize)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Content-Length", strconv.Itoa(len(png)))
		// An issued invoice never changes, and neither does its code.
		w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(png)
	})
}

// invoiceError maps fiscal's invoice errors to client errors.
func invoiceError(err error) error {
	var ve *fiscal.ValidationError
	switch {
	case errors.As(err, &ve):
		e := validationError(ve.Field, ve.Message)
		if ve.Unprocessable {
			e.Status = http.StatusUnprocessableEntity
		}
		return e
	case errors.Is(err, fiscal.ErrPrinterRatesUnknown):
		return &Error{Code: CodeDeviceUnavailable, Message: err.Error() + "; retry once the printer is online"}
	case errors.Is(err, fiscal.ErrPrinterUnavailable):
		return &Error{Code: CodeDeviceUnavailable, Message: err.Error() + "; retry once the printer is online"}
	case errors.Is(err, fiscal.ErrInvoiceNotFound):
		return notFound("invoice")
	case errors.Is(err, fiscal.ErrBadCursor):
		return validationError("cursor", "is not a cursor from a previous page")
	case errors.Is(err, fiscal.ErrCertificateNotBound):
		return &Error{Code: CodeCertificateNotBound, Message: "certificate_id: " + err.Error(), Details: map[string]any{"field": "certificate_id"}}
	case errors.Is(err, fiscal.ErrNoCertificate):
		return &Error{Code: CodeNoCertificate, Message: err.Error() + "; bind one with POST /v1/api-keys certificate_id"}
	case errors.Is(err, fiscal.ErrTINMismatch):
		return &Error{Code: CodeTINMismatch, Message: err.Error()}
	case errors.Is(err, fiscal.ErrAlreadyVoided):
		return &Error{Code: CodeInvoiceReversed, Message: err.Error(), Details: map[string]any{"field": "original_invoice_id"}}
	case errors.Is(err, fiscal.ErrCertificateNotFound):
		return &Error{Code: CodeCertificateInactive, Message: "the certificate bound to this API key no longer exists"}
	}
	return certificateError(err)
}
