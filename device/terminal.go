package device

import (
	"context"
	"errors"
	"time"
)

// ErrRetryLater, returned (wrapped) by a TxEventHandler for a
// Status-Information, says the result could not be stored yet but may be
// soon (a busy store). A driver that can asks the terminal to send it again
// (ZVT 84 9C) a bounded number of times before it refuses it.
var ErrRetryLater = errors.New("device: not stored yet, repeat later")

// Terminal is a card-payment terminal, the contract shared by the drivers
// (device/zvt first) and the simulator tests. Every method blocks until the
// terminal has returned master rights (or the call failed) and is
// serialized with the others, except Abort, which reaches into a running
// transaction.
//
// Error contract: a transport failure is returned as an error (it wraps
// ErrOffline when the line is down, ErrDisconnected when it was lost during
// the call, ErrTimeout when the terminal stopped answering). A transaction
// the terminal declined or aborted is NOT an error: it comes back as a
// TxResult with Outcome Declined or Aborted. When an error is returned after
// the terminal took the command, the outcome is unknown and the caller must
// reconcile with RepeatLastResult. A driver whose terminal commits without
// posgate's acknowledgement (nexo) wraps ErrOutcomeUnknown in such an
// error, and reports posgate's Charge.Reference back as TxInfo.SaleRef.
//
// Cancelling ctx abandons the call where it stands, even while the terminal
// holds master rights, and the terminal may still complete the payment. To
// stop a payment, call Abort and let the running call return the outcome.
type Terminal interface {
	// Register logs posgate on to the terminal (password, config, currency).
	Register(ctx context.Context) error
	// Authorize runs a sale of p.Amount.
	Authorize(ctx context.Context, p Charge, h TxEventHandler) (TxResult, error)
	// Refund credits p.Amount to a card.
	Refund(ctx context.Context, p Charge, h TxEventHandler) (TxResult, error)
	// Reverse voids the transaction with the given receipt number.
	Reverse(ctx context.Context, receiptNo int, h TxEventHandler) (TxResult, error)
	// Abort asks the terminal to stop the running transaction (or, when
	// none runs, sends a bare abort). nil means the terminal accepted the
	// request; the running call still reports the real outcome, which may
	// be Approved if the terminal finished anyway.
	Abort(ctx context.Context) error
	// EndOfDay settles the batch; TxResult.Info.Amount holds the total.
	EndOfDay(ctx context.Context, h TxEventHandler) (TxResult, error)
	// Status asks for the terminal's state.
	Status(ctx context.Context) (TerminalStatus, error)
	// RepeatLastResult asks the terminal to send the Status-Information of
	// its last transaction again, for recovery after a crash or a lost reply.
	RepeatLastResult(ctx context.Context, h TxEventHandler) (TxResult, error)
	// LogOff releases the terminal.
	LogOff(ctx context.Context) error
}

// Charge is what Authorize and Refund take.
type Charge struct {
	Amount   int64  // minor units, > 0 (1234 = 12.34)
	Currency string // ISO 4217 alpha code; "" uses the terminal's configured one
	// Reference is posgate's id of the transaction. A protocol that
	// carries one (nexo SaleTransactionID) sends it, and the terminal's
	// records echo it as TxInfo.SaleRef; others ignore it.
	Reference string
	// OriginalRef, for a refund, is the TxInfo.Ref of the sale it credits:
	// a protocol that refunds by reference (nexo) uses it; others ignore it.
	OriginalRef string
}

// ErrOutcomeUnknown is wrapped by an error returned after the terminal
// took a request it commits on its own, without waiting for posgate's
// acknowledgement (nexo): the transaction may have been approved, and only
// the terminal can tell (RepeatLastResult). A ZVT terminal commits only
// what posgate acknowledged, so its drivers never return it.
var ErrOutcomeUnknown = errors.New("terminal outcome unknown")

// RefReverser is a Terminal that voids a transaction by the reference it
// gave it (TxInfo.Ref) rather than by receipt number (nexo). Callers that
// hold a Ref use it when the Terminal offers it.
type RefReverser interface {
	ReverseRef(ctx context.Context, ref string, h TxEventHandler) (TxResult, error)
}

// Outcome of a transaction as the terminal reported it.
type Outcome string

// Outcomes.
const (
	Approved Outcome = "approved"
	Declined Outcome = "declined"
	Aborted  Outcome = "aborted" // cancelled by the customer, by timeout or by Abort
)

// TxResult is the end of a transaction.
type TxResult struct {
	Outcome  Outcome
	Code     byte        // terminal result code; 0 on success (ZVT BMP 27 or the 06 1E code)
	Message  string      // text for Code
	Info     *TxInfo     // the last Status-Information, nil if the terminal sent none
	Receipts []TxReceipt // receipts the terminal printed through posgate
}

// TxInfo is a transaction's Status-Information. It never holds a full card
// number: PAN is masked before it leaves the driver.
type TxInfo struct {
	ResultCode byte
	Amount     int64  // minor units
	Currency   string // ISO 4217 alpha code, "" if not sent
	ReceiptNo  int    // 0 if not sent
	Trace      int    // terminal trace number
	OrigTrace  int    // trace of the reversed transaction, for reversals
	TerminalID string
	Date, Time string // as sent: MMDD and hhmmss
	CardName   string
	PAN        string // masked, e.g. "6799********0019"
	AID        string
	// Ref is the terminal's own reference of the transaction, for
	// protocols that reverse by it (nexo POITransactionID); "" for ZVT.
	Ref string `json:",omitempty"`
	// SaleRef is the Charge.Reference the terminal recorded with the
	// transaction, when the protocol carries one (nexo); "" otherwise.
	SaleRef string `json:",omitempty"`
}

// TxReceipt is a block of lines the terminal asked posgate to print.
type TxReceipt struct {
	Kind  string // "customer", "merchant", "administration" or ""
	Lines []string
}

// TerminalStatus answers Status.
type TerminalStatus struct {
	Code     byte   // 0 = ready
	Text     string // meaning of Code
	Software string // version string, if the terminal sent one
}

// TxEventKind tells which field of a TxEvent is set.
type TxEventKind int

// TxEvent kinds.
const (
	EventIntermediate TxEventKind = iota + 1 // Status, Text
	EventStatusInfo                          // Info
	EventPrint                               // Receipt
)

// TxEvent is something a terminal streams while it holds master rights.
type TxEvent struct {
	Kind    TxEventKind
	At      time.Time
	Status  byte       // intermediate status code
	Text    string     // its meaning ("insert card")
	Info    *TxInfo    // Status-Information
	Receipt *TxReceipt // lines to print (one Print Line or a whole Text-Block)
}

// TxEventHandler is called synchronously for each event, BEFORE the driver
// acknowledges it to the terminal. That is the place to persist the
// Status-Information: the terminal commits a payment only once posgate has
// acknowledged it. If the handler returns an error for a Status-Information
// the driver refuses it (ZVT answers 84 66 00), after which the terminal
// reverses the payment itself, and the call returns that error; for a
// print event the driver answers "printer not ready". Errors for
// intermediate status are ignored. A nil TxEventHandler accepts everything.
type TxEventHandler func(ctx context.Context, e TxEvent) error

// PreAuthTerminal is a Terminal that can reserve an amount and settle the
// reservation later (hotels, fuel, tips). Outcomes and errors follow the
// Terminal contract.
type PreAuthTerminal interface {
	Terminal
	// PreAuthorize reserves p.Amount; the result's Info.ReceiptNo names
	// the reservation.
	PreAuthorize(ctx context.Context, p Charge, h TxEventHandler) (TxResult, error)
	// BookTotal books p.Amount (at most the reserved amount) of the
	// reservation and releases the rest.
	BookTotal(ctx context.Context, receiptNo int, p Charge, h TxEventHandler) (TxResult, error)
	// PartialReversal releases unused.Amount of the reservation and books
	// the rest.
	PartialReversal(ctx context.Context, receiptNo int, unused Charge, h TxEventHandler) (TxResult, error)
	// ReleasePreAuth releases the whole reservation.
	ReleasePreAuth(ctx context.Context, receiptNo int, h TxEventHandler) (TxResult, error)
}

// DiagnosticTerminal is a Terminal that can check its host connection and
// report its totals without settling them.
type DiagnosticTerminal interface {
	Terminal
	// Diagnosis makes the terminal talk to its host; an error means the
	// check failed or could not run.
	Diagnosis(ctx context.Context) (TxResult, error)
	// TurnoverTotals reports the unsettled totals (Info.Amount) without
	// settling them.
	TurnoverTotals(ctx context.Context, h TxEventHandler) (TxResult, error)
}

// CardReader is a Terminal that can read a card without a payment, for
// a loyalty lookup (ZVT Read Card 06 C0).
type CardReader interface {
	Terminal
	// ReadCard waits up to timeout for a card and reads it. A card not
	// presented in time, or an Abort, is not an error: Outcome says so.
	ReadCard(ctx context.Context, timeout time.Duration) (CardRead, error)
}

// CardRead is what a terminal read from a card. It never holds a full
// card number or track data.
type CardRead struct {
	Outcome   Outcome
	Code      byte   // terminal result code; 0 when read
	Message   string // text for Code
	Type      string // "chip", "magnetic_stripe", or "" if the terminal did not say
	MaskedPAN string // e.g. "6799***********0019"
	CardName  string // if the terminal named the card
}
