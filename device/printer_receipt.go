package device

import (
	"context"
	"sync"
	"time"
)

// ReceiptPrinter prints whole fiscal receipts, once.
//
// PrintReceipt is idempotent per Receipt.ID: calling it again with the same
// document, after an error, a timeout, a reconnect or a restart of the daemon
// (given a persistent PrintLedger), never produces a second fiscal receipt.
// Before it sends anything for a document it has tried before, the driver asks
// the printer for its open or last receipt and decides from that:
//
//   - the document's receipt was closed: return its result, send nothing;
//   - a receipt is open and has a payment: finish it (remaining payments, close);
//   - a receipt is open without a payment: cancel it and print again;
//   - nothing of it reached the fiscal memory: print it.
//
// If the printer's last receipt moved on in a way this document cannot
// explain, it returns ErrPrintUncertain and sends nothing.
type ReceiptPrinter interface {
	PrintReceipt(ctx context.Context, doc Receipt) (ReceiptResult, error)
}

// Receipt is a whole fiscal receipt.
type Receipt struct {
	// ID is the caller's identity of the document, e.g. the invoice ID.
	// Required; it is the idempotency key.
	ID     string
	Header ReceiptHeader
	// Storno, if set, prints a storno (reversal) receipt of an earlier
	// receipt instead of a sale; Header is then ignored.
	Storno   *StornoHeader
	Lines    []Line    // sale lines and comments, in order
	Discount Modifier  // receipt-level discount or surcharge, applied at the subtotal
	Payments []Payment // in order; none means everything in cash
	Footer   []string  // comment lines after the sales, before the payments (e.g. IIC and verify URL): printed whole before the receipt can only be completed
	// QR, if set, is a payload a receipt printer (device/escpos) prints as
	// a QR code after Footer, e.g. the verification URL. Fiscal printers
	// ignore it.
	QR string
}

// Line is a sale line or, when Comment is set, a comment line.
type Line struct {
	Item    Item
	Comment string
}

// ReceiptResult is a printed receipt.
type ReceiptResult struct {
	ID     string
	Slip   int       // the printer's slip number, 0 if recovered without it
	Number int       // fiscal receipt number
	Amount int64     // total as the printer computed it
	Time   time.Time // when the printer closed it
	// Recovered is true when the receipt was found already printed by an
	// earlier attempt, and (when Finished is also true) when an open receipt
	// of an earlier attempt was completed rather than printed from the start.
	Recovered bool
	Finished  bool

	// What a fiscal printer that fiscalizes (Bulgaria) reports about the
	// closed receipt; empty where the printer or the document has none.
	// UNP is the unique sale number the receipt was opened with.
	UNP string `json:",omitempty"`
	// DocumentNumber is the printer's number of the document, the one its
	// fiscal QR code carries (Datecs X: command 74 (4Ah) option 0).
	DocumentNumber int `json:",omitempty"`
	// QRData is the fiscal QR code string printed on the receipt, read
	// back from the printer (Datecs X: command 74 (4Ah) option 1).
	QRData string `json:",omitempty"`
	// FiscalMemorySerial is the number of the printer's fiscal memory.
	FiscalMemorySerial string `json:",omitempty"`
}

// PrintAttempt is what a driver remembers about printing one document.
type PrintAttempt struct {
	ID string
	// Before is the printer's last fiscal receipt number just before the
	// document was opened. A later last number means something was printed.
	Before int
	// Amount is the total the printer reported before close; 0 if unknown.
	Amount int64
	Done   bool
	Result ReceiptResult
}

// PrintLedger keeps PrintAttempts by document ID. The fiscal print-job layer
// implements it on its job rows (persisted with synchronous=FULL) so that
// PrintReceipt stays idempotent across restarts; MemoryLedger only covers
// the life of the process.
type PrintLedger interface {
	// LoadAttempt returns the attempt for id; ok is false if there is none.
	LoadAttempt(ctx context.Context, id string) (a PrintAttempt, ok bool, err error)
	// SaveAttempt stores a, replacing any earlier attempt with the same ID.
	// It must be durable when it returns.
	SaveAttempt(ctx context.Context, a PrintAttempt) error
}

// MemoryLedger is a PrintLedger in memory. The zero value is ready to use.
type MemoryLedger struct {
	mu       sync.Mutex
	attempts map[string]PrintAttempt
}

var _ PrintLedger = (*MemoryLedger)(nil)

// LoadAttempt implements PrintLedger.
func (l *MemoryLedger) LoadAttempt(_ context.Context, id string) (PrintAttempt, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.attempts[id]
	return a, ok, nil
}

// SaveAttempt implements PrintLedger.
func (l *MemoryLedger) SaveAttempt(_ context.Context, a PrintAttempt) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.attempts == nil {
		l.attempts = make(map[string]PrintAttempt)
	}
	l.attempts[a.ID] = a
	return nil
}
