package fiscal

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"time"
)

// Registration kinds.
const (
	KindInvoice     = "invoice"
	KindTCR         = "tcr"
	KindCashDeposit = "cash_deposit"
)

// Registration states, as GET /v1/invoices/{id} shows them.
const (
	RegPending   = "pending"   // not registered yet; retried on schedule
	RegCompleted = "completed" // the service gave its code (FIC)
	RegError     = "error"     // the service refused it; fix and retry
	RegDead      = "dead"      // every attempt failed; retry by hand
)

// Failure classes of a registration attempt.
const (
	// ClassOffline: nothing could connect. No attempt is spent and the
	// queue waits: the link is down, not the invoice wrong.
	ClassOffline = "offline"
	// ClassTemporary: reached but failed (timeout, 5xx, 9xx fault, a
	// broken answer). Retried on schedule until the attempts run out.
	ClassTemporary = "temporary"
	// ClassRejected: the service refused the request (a client fault
	// code). Not retried until a person retries it.
	ClassRejected = "rejected"
)

// RegistrationError is a failed registration attempt.
type RegistrationError struct {
	Class   string
	Code    string // the service's error code, "" if none
	Message string
	// Blocking: the invoice may not be handed to the customer until the
	// error is fixed and the invoice registered (ME functional spec 3.4).
	Blocking bool
	Err      error
}

func (e *RegistrationError) Error() string {
	if e.Code != "" {
		return "tax service error " + e.Code + ": " + e.Message
	}
	return e.Message
}

func (e *RegistrationError) Unwrap() error { return e.Err }

// Attempt is one registration attempt as the Registrar builds it.
type Attempt struct {
	Kind string
	// Invoice and Original (a refund's or void's sale) for KindInvoice.
	Invoice  *Invoice
	Original *Invoice
	// Payload is the request of a TCR or cash deposit registration.
	Payload json.RawMessage
	// Resend says a request for this registration left the box before,
	// or the first one leaves late: it must say it is a subsequent
	// delivery (SubseqDelivType); LastClass says why.
	Resend    bool
	LastClass string
	// Now is the send time.
	Now         time.Time
	Signer      crypto.Signer
	Certificate *x509.Certificate
}

// Registrar registers with a tax service; a country profile implements
// it (fiscal/me). Build and Send are apart so the request is durable
// before it leaves the box.
type Registrar interface {
	// Check validates an invoice before it commits, naming the field in
	// a *ValidationError; orig is the sale a refund or void corrects.
	Check(inv Invoice, orig *Invoice) error
	// Build returns the signed request. Errors are *RegistrationError
	// (ClassRejected: the request cannot be made).
	Build(ctx context.Context, a Attempt) ([]byte, error)
	// Send posts a built request and returns the service's code (FIC,
	// TCR code, deposit code) and the answer's bytes. Errors are
	// *RegistrationError; the answer's bytes come with them if any.
	Send(ctx context.Context, kind string, req []byte) (code string, answer []byte, err error)
}

// FiscalizationStatus is an invoice's registration with the tax service.
type FiscalizationStatus struct {
	Status    string `json:"status"` // pending, completed, error, dead
	FIC       string `json:"fic,omitempty"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	Code      string `json:"code,omitempty"`
	// Blocking: the service refused the invoice with a blocking error
	// (ME ch. 3.4); it may not be handed over until fixed and registered.
	Blocking     bool       `json:"blocking"`
	CompletedAt  *time.Time `json:"completed_at,omitempty"`
	NextAttempt  *time.Time `json:"next_attempt_at,omitempty"`
	DeadlineAt   time.Time  `json:"deadline_at"` // 48 h after issue
	Subsequently bool       `json:"subsequent_delivery"`
}

// TCRRegistration asks the tax service for the device's TCR code
// (POST /v1/fiscal/tcr).
type TCRRegistration struct {
	// InternalID is the shop's own id of the device (TCRIntID).
	InternalID string `json:"internal_id"`
	// ValidFrom is the first day the code is valid, YYYY-MM-DD; optional.
	ValidFrom string `json:"valid_from"`
	// Type is "regular" (default) or "vending".
	Type string `json:"type"`
}

// Cash deposit operations.
const (
	CashInitial  = "initial"  // the day's opening cash, before the first cash invoice
	CashWithdraw = "withdraw" // cash taken out of the drawer
)

// CashDeposit reports the drawer's opening cash or a withdrawal
// (POST /v1/fiscal/cash-deposits).
type CashDeposit struct {
	Operation string    `json:"operation"` // initial or withdraw
	Amount    int64     `json:"amount"`    // minor units
	At        time.Time `json:"at"`        // filled by posgate: when it was reported
}
