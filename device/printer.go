package device

import (
	"context"
	"time"
)

// Printer is a fiscal printer: the contract shared by the printer drivers
// (device/datecs) and the printer simulator.
//
// Money is in integer minor units (1234 = 12.34) and quantities are in
// thousandths (1500 = 1.500), as everywhere in posgate. VAT groups are 1…8
// (A…H on the printer).
//
// Every method returns a *PrinterError when the printer answered but refused
// the command: its error field was non-zero, or its status bytes reported a
// fault. Use errors.Is with ErrPaperOut, ErrCoverOpen, ErrFiscalMemoryFull,
// ErrReceiptOpen, ErrNoReceipt, ErrCommandNotPermitted … to tell the cases
// apart; every refusal matches ErrPrinterRejected. An answer the printer marks
// as failed is never reported as success. Transport failures (no answer after
// the resends, a closed port) are returned wrapped with the driver's own
// sentinels or the port's error.
type Printer interface {
	// Info identifies the printer: model, firmware, serial and fiscal
	// memory number.
	Info(ctx context.Context) (PrinterInfo, error)
	// Status reads the status bytes. A paper-out printer still answers, so
	// Status reports faults in the returned value, not as an error.
	Status(ctx context.Context) (PrinterStatus, error)

	// OpenReceipt opens a fiscal receipt and returns the printer's slip number.
	// Returns ErrReceiptOpen if a receipt is already open.
	OpenReceipt(ctx context.Context, h ReceiptHeader) (slip int, err error)
	// OpenStorno opens a storno (reversal) receipt of an earlier fiscal
	// receipt; items, payments and close then work as for a sale.
	OpenStorno(ctx context.Context, h StornoHeader) (slip int, err error)
	// AddItem registers a sale line. Returns ErrNoReceipt if no receipt is open.
	AddItem(ctx context.Context, it Item) error
	// AddComment prints a free text line inside the open fiscal receipt.
	AddComment(ctx context.Context, text string) error
	// Subtotal prints the subtotal and applies an optional receipt-level
	// discount or surcharge (Modifier{} for none).
	Subtotal(ctx context.Context, m Modifier) (Subtotal, error)
	// AddPayment registers a payment. Amount 0 pays the rest.
	// After the first payment the receipt can no longer be cancelled.
	AddPayment(ctx context.Context, p Payment) (PaymentResult, error)
	// CloseReceipt closes the open fiscal or storno receipt and returns its
	// slip number. The receipt must be fully paid.
	CloseReceipt(ctx context.Context) (slip int, err error)
	// CancelReceipt voids the open receipt. It returns ErrNotPermitted
	// once a payment has been registered.
	CancelReceipt(ctx context.Context) error

	// PrintText prints a non-fiscal receipt with the given lines.
	PrintText(ctx context.Context, lines []string) error
	// XReport prints the daily report without clearing the day's totals.
	XReport(ctx context.Context) (Report, error)
	// ZReport prints the daily closing report, stores it in fiscal memory
	// and clears the day's totals.
	ZReport(ctx context.Context) (Report, error)
	// Cash registers cash put into (CashIn) or taken out of (CashOut) the
	// drawer; an amount of 0 only reads the drawer.
	Cash(ctx context.Context, kind CashKind, amount int64) (CashState, error)

	// DateTime reads the printer's clock.
	DateTime(ctx context.Context) (time.Time, error)
	// SetDateTime sets the printer's clock.
	SetDateTime(ctx context.Context, t time.Time) error

	// Transaction reports the open receipt, or the last one when none is open.
	Transaction(ctx context.Context) (TransactionStatus, error)
	// LastReceipt reports the last fiscal receipt and Z report.
	LastReceipt(ctx context.Context) (LastReceipt, error)

	// Close releases the port.
	Close() error
}

// PrinterInfo identifies a fiscal printer.
type PrinterInfo struct {
	Model        string // e.g. "FP-700X"
	Firmware     string // revision, date and time as the printer reports them
	Serial       string // two letters and six digits, e.g. "DT000600"
	FiscalMemory string // fiscal memory number, eight digits
}

// PrinterStatus is the printer's state decoded from its status bytes.
type PrinterStatus struct {
	PaperOut          bool
	PaperLow          bool
	CoverOpen         bool
	MechanismFault    bool
	ClockNotSet       bool
	ReceiptOpen       bool // a fiscal (or storno) receipt is open
	NonFiscalOpen     bool
	JournalFull       bool
	JournalNearlyFull bool
	FiscalMemoryFull  bool
	FiscalMemoryLow   bool
	FiscalMemoryError bool
	Fiscalized        bool
	Raw               []byte // the status bytes as received
}

// ReceiptHeader opens a fiscal receipt.
type ReceiptHeader struct {
	Operator int    // operator number; 0 means 1
	Password string // operator password; "" means "0000"
	Till     int    // till number; 0 means 1
	// UniqueSaleNumber is the printer's unique sale number (NSale), e.g.
	// "DT000600-0001-0000001": the device's serial number, the operator's
	// code, the sale's sequence number (Bulgaria, Наредба Н-18). Optional;
	// a driver refuses a malformed one before sending anything, and reads
	// the receipt's QR data back after close (ReceiptResult).
	UniqueSaleNumber string
	Invoice          bool // open an invoice instead of a plain receipt
}

// StornoReason says why a receipt is reversed.
type StornoReason int

// Storno reasons, with the printer's codes.
const (
	StornoOperatorError StornoReason = 0
	StornoRefund        StornoReason = 1
	StornoTaxBase       StornoReason = 2
)

// StornoHeader opens a storno (reversal) receipt.
type StornoHeader struct {
	ReceiptHeader
	Reason         StornoReason
	OriginalNumber int       // number of the reversed receipt
	OriginalTime   time.Time // when the reversed receipt was printed
	FiscalMemory   string    // fiscal memory number of the printer that printed it
}

// ModifierKind is a discount or surcharge kind. The values are the printer's codes.
type ModifierKind int

// Modifier kinds.
const (
	NoModifier       ModifierKind = 0
	SurchargePercent ModifierKind = 1
	DiscountPercent  ModifierKind = 2
	SurchargeAmount  ModifierKind = 3
	DiscountAmount   ModifierKind = 4
)

// Valid reports whether k is a known kind.
func (k ModifierKind) Valid() bool { return k >= NoModifier && k <= DiscountAmount }

// Modifier is a discount or surcharge on an item or on the whole receipt.
type Modifier struct {
	Kind ModifierKind
	// Value is in hundredths of a percent for the percent kinds (1000 = 10.00 %)
	// and in minor units for the amount kinds.
	Value int64
}

// Item is one sale line.
type Item struct {
	Name     string
	VATGroup int // 1…8
	// VATRate, if set, is the rate the caller means for the item, in
	// hundredths of a percent (2100 = 21 %). A driver that knows the rates
	// programmed in the printer's groups refuses the item, before anything
	// is printed, when VATGroup has another rate.
	VATRate    *int64
	UnitPrice  int64 // minor units
	Quantity   int64 // thousandths; 0 means 1.000
	Discount   Modifier
	Department int // 0 = none
}

// Subtotal is the answer to a subtotal.
type Subtotal struct {
	Amount   int64
	PerGroup [8]int64 // amount per VAT group A…H
}

// PaymentMode is how a payment was made. The values are the printer's codes.
type PaymentMode int

// Payment modes.
const (
	PayCash   PaymentMode = 0
	PayCard   PaymentMode = 1
	PayDebit  PaymentMode = 2
	PayOther3 PaymentMode = 3
	PayOther4 PaymentMode = 4
	PayOther5 PaymentMode = 5
)

// Payment is one payment on a receipt.
type Payment struct {
	Mode   PaymentMode
	Amount int64 // 0 pays the rest
}

// PaymentResult is the printer's answer to a payment.
type PaymentResult struct {
	Due    int64 // still to pay
	Change int64 // change to give back
}

// Report is the answer to an X or Z report: the day's turnover per VAT group.
type Report struct {
	Number int // the report's number (the next Z number for an X report)
	Totals [8]int64
	Storno [8]int64
}

// CashKind selects a cash operation.
type CashKind int

// Cash operations, with the printer's codes.
const (
	CashIn  CashKind = 0
	CashOut CashKind = 1
)

// CashState is the drawer after a cash operation.
type CashState struct {
	Sum int64 // cash in the drawer
	In  int64 // cash put in today
	Out int64 // cash taken out today
}

// ReceiptState says which kind of receipt is open.
type ReceiptState int

// Receipt states.
const (
	NoReceiptOpen ReceiptState = 0
	FiscalOpen    ReceiptState = 1
	StornoOpen    ReceiptState = 2 // any storno reason
)

// TransactionStatus describes the open receipt, or the last one when none is open.
type TransactionStatus struct {
	Open   ReceiptState
	Number int   // fiscal number of the open or the last receipt
	Items  int   // sale lines registered
	Amount int64 // receipt total
	Paid   int64 // paid so far
}

// LastReceipt describes the last fiscal receipt and the last Z report.
type LastReceipt struct {
	Number  int
	Time    time.Time
	ZNumber int
	ZTime   time.Time
}
