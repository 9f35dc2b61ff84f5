package api

import (
	"errors"
	"net/http"

	"github.com/posgate/posgate/apikey"
)

func handleAPIKeyCreate(d Deps) http.Handler {
	type request struct {
		Label         string `json:"label"`
		Role          string `json:"role"`
		CertificateID string `json:"certificate_id"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		created, err := d.Keys.Create(r.Context(), apikey.NewParams{Label: req.Label, Role: req.Role, CertificateID: req.CertificateID})
		switch {
		case errors.Is(err, apikey.ErrInvalidLabel):
			writeError(w, r, d.Log, validationError("label", "must be 1 to 100 characters"))
		case errors.Is(err, apikey.ErrInvalidRole):
			writeError(w, r, d.Log, validationError("role", `must be "admin" or "pos"`))
		case errors.Is(err, apikey.ErrUnknownCertificate):
			writeError(w, r, d.Log, unprocessable("certificate_id", "no certificate with this id; import one with POST /v1/certificates"))
		case errors.Is(err, apikey.ErrInactiveCertificate):
			writeError(w, r, d.Log, unprocessable("certificate_id", "this certificate is deactivated; bind an active one"))
		case err != nil:
			writeError(w, r, d.Log, err)
		default:
			writeJSON(w, http.StatusCreated, created)
		}
	})
}

func handleAPIKeyList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys, err := d.Keys.List(r.Context())
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		writeList(w, keys, "")
	})
}

func handleAPIKeyRevoke(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := d.Keys.Revoke(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, apikey.ErrNotFound):
			writeError(w, r, d.Log, notFound("api key"))
		case errors.Is(err, apikey.ErrAlreadyRevoke):
			writeError(w, r, d.Log, &Error{Code: CodeConflict, Message: "api key is already revoked"})
		case err != nil:
			writeError(w, r, d.Log, err)
		default:
			writeJSON(w, http.StatusOK, key)
		}
	})
}

// unprocessable is a validation error about a well-formed value that
// names something that does not exist or cannot be used: 422, not 400.
func unprocessable(field, msg string) *Error {
	e := validationError(field, msg)
	e.Status = http.StatusUnprocessableEntity
	return e
}
