package payment

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/outbox"
)

// Errors of Service. Validation problems are *ValidationError.
var (
	ErrNotFound          = errors.New("payment not found")
	ErrTerminalBusy      = errors.New("the terminal is busy with another payment")
	ErrTerminalOffline   = errors.New("the terminal is offline")
	ErrIdempotencyReused = errors.New("the idempotency key was used for a different payment")
	ErrNotCancellable    = errors.New("the payment is completed; reverse it instead")
	ErrBadCursor         = errors.New("not a cursor from a previous page")
	ErrAlreadyReversed   = errors.New("the original payment is already reversed")
	// ErrHasRefunds refuses a reversal of a sale that has refunds
	// (completed, running or unresolved): voiding the whole sale on top of
	// them would credit more than was charged.
	ErrHasRefunds         = errors.New("the original payment has refunds; refund the rest instead of reversing it")
	errUnchanged          = errors.New("payment: nothing to change")
	errStopped            = errors.New("payment: service stopped")
	errReversalNotAllowed = errors.New("payment: automatic reversal only for sales")
)

// Status is where a payment is in its life.
type Status string

// Statuses. pending: recorded, not yet sent; in_progress: the terminal
// has it; the others are final.
const (
	StatusPending    Status = "pending"
	StatusInProgress Status = "in_progress"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
	StatusTimeout    Status = "timeout"
)

// Final reports whether s is an end state a cashier can act on.
func (s Status) Final() bool {
	return s != StatusPending && s != StatusInProgress
}

// Type of payment.
type Type string

// Types.
const (
	TypeSale     Type = "sale"
	TypeRefund   Type = "refund"
	TypeReversal Type = "reversal" // voids an earlier sale by its receipt number
)

// Resolution says how a payment that timed out or was interrupted ended
// on the terminal.
type Resolution string

// Resolutions.
const (
	ResolutionNotCharged  Resolution = "not_charged"
	ResolutionReversed    Resolution = "approved_then_reversed"
	ResolutionNeedsReview Resolution = "needs_review" // see Evidence
)

// Event types written by payment (DESIGN §6). The data is the Payment.
const (
	EventCompleted = "payment.completed"
	EventFailed    = "payment.failed"
	EventCancelled = "payment.cancelled"
	EventTimeout   = "payment.timeout"
	EventReversed  = "payment.reversed"
	// EventNeedsReview: the terminal approved a refund or reversal with
	// another amount than posgate asked for (see amountMismatch).
	EventNeedsReview = "payment.needs_review"
)

// ValidationError is a request the service refuses; Field names the JSON
// field.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// NewPayment is what a cashier asks for (POST /v1/payments).
type NewPayment struct {
	Type       Type   `json:"type"`
	TerminalID string `json:"terminal_id"`
	Amount     int64  `json:"amount"`   // minor units
	Currency   string `json:"currency"` // ISO 4217; "" means the terminal's
	Reference  string `json:"reference"`
	// OriginalPaymentID is the sale a reversal voids (required), or the
	// sale a refund refers to (optional).
	OriginalPaymentID string `json:"original_payment_id"`
}

// Caller is who asks: the API key and the request's Idempotency-Key.
type Caller struct {
	KeyID          string
	IdempotencyKey string
	// CompleteTx, when set, runs in the transaction that records a new
	// payment, after its row: the API keeps its answer for retries there,
	// so the payment and the answer commit with one fsync. An error
	// rolls the payment back.
	CompleteTx func(ctx context.Context, tx *sql.Tx, p Payment) error
}

// Payment is a payment as the API returns it and events carry it.
type Payment struct {
	ID                string     `json:"id"`
	Type              Type       `json:"type"`
	Status            Status     `json:"status"`
	Resolution        Resolution `json:"resolution,omitempty"`
	TerminalID        string     `json:"terminal_id"`
	Amount            int64      `json:"amount"`
	Currency          string     `json:"currency"`
	Reference         string     `json:"reference"`
	OriginalPaymentID string     `json:"original_payment_id,omitempty"`
	// From the terminal's Status-Information.
	ReceiptNumber int    `json:"receipt_number,omitempty"`
	TraceNumber   int    `json:"trace_number,omitempty"`
	MaskedPAN     string `json:"masked_pan,omitempty"`
	CardBrand     string `json:"card_brand,omitempty"`
	// TerminalRef is the terminal's own reference of the transaction when
	// its protocol has one (nexo POITransactionID: "<id>|<timestamp>").
	TerminalRef string `json:"terminal_reference,omitempty"`
	// ResultCode is the terminal's result, 0 for approved; null until the
	// terminal ended the transaction.
	ResultCode *int      `json:"result_code"`
	ResultText string    `json:"result_text,omitempty"`
	Receipts   []Receipt `json:"receipts"`
	// TerminalMessage is what the terminal shows the customer now
	// ("insert card"), while the payment runs. It is not stored.
	TerminalMessage string `json:"terminal_message,omitempty"`
	// Reversal is set once this payment was reversed, automatically after
	// a late approval or by a reversal payment.
	Reversal *Reversal `json:"reversal,omitempty"`
	// Reservation is set on a completed preauth: what it reserves and,
	// once booked or released, how.
	Reservation *Reservation `json:"reservation,omitempty"`
	// Evidence is what a reconciliation saw, for needs_review above all.
	Evidence *Evidence `json:"evidence,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	// StartedAt is when the request went to the terminal; the timeout
	// runs from there to DeadlineAt.
	StartedAt  *time.Time `json:"started_at,omitempty"`
	DeadlineAt *time.Time `json:"deadline_at,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`    // the final status was set
	ResolvedAt *time.Time `json:"resolved_at,omitempty"` // the resolution was set
	UpdatedAt  time.Time  `json:"updated_at"`
}

// Receipt is a block of lines the terminal printed through posgate.
type Receipt struct {
	Kind  string   `json:"kind,omitempty"`
	Lines []string `json:"lines"`
}

// Reversal records how a payment was voided.
type Reversal struct {
	// By is "auto" for posgate's own reversal, else the id of the
	// reversal payment.
	By            string    `json:"by"`
	ReceiptNumber int       `json:"receipt_number,omitempty"`
	TraceNumber   int       `json:"trace_number,omitempty"`
	At            time.Time `json:"at"`
}

// Evidence is what a reconciliation compared.
type Evidence struct {
	Reason string `json:"reason"`
	// Recorded is the Status-Information posgate persisted before it
	// acknowledged it; Terminal is what the terminal reported last.
	Recorded *TerminalRecord `json:"recorded,omitempty"`
	Terminal *TerminalRecord `json:"terminal,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// TerminalRecord is a Status-Information in the evidence.
type TerminalRecord struct {
	ResultCode    int    `json:"result_code"`
	Amount        int64  `json:"amount"`
	ReceiptNumber int    `json:"receipt_number,omitempty"`
	TraceNumber   int    `json:"trace_number,omitempty"`
	OrigTrace     int    `json:"original_trace_number,omitempty"`
	TerminalID    string `json:"terminal_id,omitempty"`
	Date          string `json:"date,omitempty"`
	Time          string `json:"time,omitempty"`
}

func terminalRecord(i *device.TxInfo) *TerminalRecord {
	if i == nil {
		return nil
	}
	return &TerminalRecord{ResultCode: int(i.ResultCode), Amount: i.Amount, ReceiptNumber: i.ReceiptNo,
		TraceNumber: i.Trace, OrigTrace: i.OrigTrace, TerminalID: i.TerminalID, Date: i.Date, Time: i.Time}
}

// record is a payment as stored: the API view plus what only posgate
// needs.
type record struct {
	Payment
	// Open is true until the terminal ended the session (or a reconcile
	// did); while it is, the terminal is busy.
	Open bool `json:"open"`
	// Info is the transaction's Status-Information, persisted before the
	// driver acknowledged it. ReversalInfo is that of the reversal.
	Info         *device.TxInfo `json:"info,omitempty"`
	ReversalInfo *device.TxInfo `json:"reversal_info,omitempty"`
	KeyID        string         `json:"-"`
	IdemKey      string         `json:"-"`
}

// setResult records the terminal's result code and its text.
func (r *record) setResult(code byte, text string) {
	c := int(code)
	r.ResultCode = &c
	r.ResultText = text
}

// setInfo copies a Status-Information onto the payment.
func (r *record) setInfo(i *device.TxInfo) {
	r.Info = i
	if i.ReceiptNo > 0 {
		r.ReceiptNumber = i.ReceiptNo
	}
	if i.Trace > 0 {
		r.TraceNumber = i.Trace
	}
	if i.PAN != "" {
		r.MaskedPAN = i.PAN
	}
	if i.CardName != "" {
		r.CardBrand = i.CardName
	}
	if i.Ref != "" {
		r.TerminalRef = i.Ref
	}
}

// EmitTxFunc writes an event in the caller's transaction.
type EmitTxFunc func(ctx context.Context, tx *sql.Tx, eventType string, data any) error

// EmitToOutbox is the default EmitTxFunc: outbox.EnqueueTx.
func EmitToOutbox(ctx context.Context, tx *sql.Tx, eventType string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s: %w", eventType, err)
	}
	if _, err := outbox.EnqueueTx(ctx, tx, outbox.Event{Type: eventType, Data: b}); err != nil {
		return fmt.Errorf("enqueue %s: %w", eventType, err)
	}
	return nil
}
