package api

import (
	"encoding/base64"
	"errors"
	"net/http"

	"github.com/posgate/posgate/fiscal"
)

// Certificate error codes (statuses in statusOf).
const (
	CodeCertificateInvalid  = "CERTIFICATE_INVALID"
	CodeCertificatePassword = "CERTIFICATE_PASSWORD_INCORRECT"
	CodeCertificateExpired  = "CERTIFICATE_EXPIRED"
	CodeCertificateExists   = "CERTIFICATE_EXISTS"
	CodeCertificateInactive = "CERTIFICATE_INACTIVE"
)

func handleCertificateImport(d Deps) http.Handler {
	type request struct {
		PKCS12         string `json:"pkcs12"` // base64
		Password       string `json:"password"`
		CertificatePEM string `json:"certificate_pem"`
		PrivateKeyPEM  string `json:"private_key_pem"`
		Label          string `json:"label"`
		TIN            string `json:"tin"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Certificates == nil {
			writeError(w, r, d.Log, fiscalOff())
			return
		}
		var req request
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		p := fiscal.ImportParams{Password: req.Password, CertificatePEM: req.CertificatePEM,
			PrivateKeyPEM: req.PrivateKeyPEM, Label: req.Label, TIN: req.TIN}
		if req.PKCS12 != "" {
			b, err := base64.StdEncoding.DecodeString(req.PKCS12)
			if err != nil {
				writeError(w, r, d.Log, validationError("pkcs12", "must be the .p12 file in standard base64"))
				return
			}
			p.PKCS12 = b
		}
		if len(req.Label) > 100 {
			writeError(w, r, d.Log, validationError("label", "must be at most 100 characters"))
			return
		}
		cert, err := d.Certificates.Import(r.Context(), p)
		if err != nil {
			writeError(w, r, d.Log, certificateError(err))
			return
		}
		d.Log.Info().Str("certificate_id", cert.ID).Str("serial", cert.Serial).Time("not_after", cert.NotAfter).
			Msg("certificate imported")
		writeJSON(w, http.StatusCreated, cert)
	})
}

func handleCertificateList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Certificates == nil {
			writeError(w, r, d.Log, fiscalOff())
			return
		}
		certs, err := d.Certificates.List(r.Context())
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		writeList(w, certs, "")
	})
}

func handleCertificateGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Certificates == nil {
			writeError(w, r, d.Log, fiscalOff())
			return
		}
		cert, err := d.Certificates.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Log, certificateError(err))
			return
		}
		writeJSON(w, http.StatusOK, cert)
	})
}

func handleCertificateDeactivate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Certificates == nil {
			writeError(w, r, d.Log, fiscalOff())
			return
		}
		cert, err := d.Certificates.Deactivate(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Log, certificateError(err))
			return
		}
		d.Log.Info().Str("certificate_id", cert.ID).Msg("certificate deactivated")
		writeJSON(w, http.StatusOK, cert)
	})
}

// certificateError maps fiscal's certificate errors to client errors;
// their text is written for operators and never holds key material.
func certificateError(err error) error {
	code := ""
	switch {
	case errors.Is(err, fiscal.ErrCertificateNotFound):
		return notFound("certificate")
	case errors.Is(err, fiscal.ErrWrongPassword):
		return &Error{Code: CodeCertificatePassword, Message: err.Error(), Details: map[string]any{"field": "password"}}
	case errors.Is(err, fiscal.ErrCertificateExpired), errors.Is(err, fiscal.ErrCertificateNotYetValid):
		code = CodeCertificateExpired
	case errors.Is(err, fiscal.ErrInvalidCertificate), errors.Is(err, fiscal.ErrKeyMismatch):
		code = CodeCertificateInvalid
	case errors.Is(err, fiscal.ErrCertificateExists):
		code = CodeCertificateExists
	case errors.Is(err, fiscal.ErrCertificateInactive), errors.Is(err, fiscal.ErrAlreadyDeactivated):
		code = CodeCertificateInactive
	default:
		return err
	}
	return &Error{Code: code, Message: err.Error()}
}

func fiscalOff() *Error {
	return &Error{Code: CodeUnavailable, Message: "fiscal invoicing is not configured on this device ([fiscal] scheme)"}
}
