package api

import (
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/store"
)

// Error is an error the client may see: a stable code, a human message,
// and optionally the offending field and more details.
type Error struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
	// Status overrides the code's usual status when non-zero.
	Status int `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Codes shared by every route. Resource files add their own below.
const (
	CodeInvalidJSON        = "INVALID_JSON"
	CodeValidation         = "VALIDATION_ERROR"
	CodeBodyTooLarge       = "BODY_TOO_LARGE"
	CodeUnauthorized       = "UNAUTHORIZED"
	CodeForbidden          = "FORBIDDEN"
	CodeNotFound           = "NOT_FOUND"
	CodeMethodNotAllowed   = "METHOD_NOT_ALLOWED"
	CodeConflict           = "CONFLICT"
	CodeIdempotencyReused  = "IDEMPOTENCY_KEY_REUSED"
	CodeIdempotencyBusy    = "IDEMPOTENCY_KEY_IN_USE"
	CodeIdempotencyMissing = "IDEMPOTENCY_KEY_REQUIRED"
	CodeUnsupportedMedia   = "UNSUPPORTED_MEDIA_TYPE"
	CodePrinterRejected    = "PRINTER_REJECTED"
	CodeDeviceUnavailable  = "DEVICE_UNAVAILABLE"
	CodeInternal           = "INTERNAL"
	CodeUnavailable        = "UNAVAILABLE"
	CodeRateLimited        = "RATE_LIMITED"
	CodeIdempotencyLimit   = "IDEMPOTENCY_KEY_LIMIT"
	// CodeStoreUnavailable: the store cannot take the write now (disk
	// full, I/O error, read-only, locked too long). Nothing was created;
	// retry with the same Idempotency-Key after Retry-After.
	CodeStoreUnavailable = "STORE_UNAVAILABLE"
)

// retryAfter is the Retry-After (seconds) of a 503 that sets none itself.
const retryAfter = "5"

// statusOf maps an error code to its HTTP status. It is the one place
// statuses are chosen; add new codes here.
func statusOf(code string) int {
	switch code {
	case CodeInvalidJSON, CodeValidation, CodeIdempotencyMissing, CodeBodyTooLarge:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict, CodeIdempotencyBusy, CodePrinterRejected, CodeNotRetryable:
		return http.StatusConflict
	case CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case CodeIdempotencyReused:
		return http.StatusUnprocessableEntity
	case CodeCertificateNotBound:
		return http.StatusForbidden
	case CodeCertificateExists, CodeCertificateInactive, CodeNoCertificate, CodeTINMismatch, CodeInvoiceReversed:
		return http.StatusConflict
	case CodeCertificateInvalid, CodeCertificatePassword, CodeCertificateExpired:
		return http.StatusUnprocessableEntity
	case CodeEndpointLimit:
		return http.StatusConflict
	case CodeEndpointValidation:
		return http.StatusUnprocessableEntity
	case CodeTerminalBusy, CodePaymentNotCancellable, CodePaymentReversed:
		return http.StatusConflict
	case CodePaymentHasRefunds:
		return http.StatusConflict
	case CodeTerminalOffline:
		return http.StatusServiceUnavailable
	case CodeUnavailable, CodeDeviceUnavailable, CodeStoreUnavailable:
		return http.StatusServiceUnavailable
	case CodeRateLimited, CodeIdempotencyLimit:
		return http.StatusTooManyRequests
	default:
		return http.StatusInternalServerError
	}
}

// Errorf-style constructors for the common cases.

func validationError(field, msg string) *Error {
	return &Error{Code: CodeValidation, Message: field + ": " + msg, Details: map[string]any{"field": field}}
}

func notFound(what string) *Error {
	return &Error{Code: CodeNotFound, Message: what + " not found"}
}

// writeError writes err as the JSON envelope. An error that is not an
// *Error is a fault of the store (store.Unavailable: disk full, I/O error,
// read-only, locked: 503 STORE_UNAVAILABLE) or else internal: the client
// gets a generic message, the log gets the error, never the other way
// round. Every 503 carries Retry-After.
func writeError(w http.ResponseWriter, r *http.Request, log zerolog.Logger, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
	case store.Unavailable(err):
		log.Warn().Err(err).Str("route", r.Pattern).Msg("store unavailable")
		e = &Error{Code: CodeStoreUnavailable, Message: "the store cannot take writes now (disk full or failing); nothing was created, retry later"}
	default:
		log.Error().Err(err).Str("route", r.Pattern).Msg("internal error")
		e = &Error{Code: CodeInternal, Message: "internal error; see the posgate log"}
	}
	status := e.Status
	if status == 0 {
		status = statusOf(e.Code)
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, map[string]any{"error": e})
}
