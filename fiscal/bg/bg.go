package bg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
)

// SalePrinter is what the profile needs of a Bulgarian fiscal printer.
type SalePrinter interface {
	device.ReceiptPrinter
	// PrintSale prints r as a fiscal receipt opened with the unique sale
	// number unp (a storno: the sale's UNP), idempotently per r.ID like
	// PrintReceipt, and reads back after close what the printer
	// fiscalized: its QR data and fiscal memory number. A read-back that
	// fails is an error, and the retry finds the receipt printed and
	// reads back again (device/datecs does so).
	PrintSale(ctx context.Context, unp string, r device.Receipt) (Sale, error)
}

// Sale is a closed fiscal receipt as the printer reports it.
type Sale struct {
	device.ReceiptResult
	// QRData is the fiscal QR code printed on the receipt (Naredba N-18
	// appendix 18a: "FM*number*YYYY-MM-DD*hh:mm:ss*amount"; Datecs X
	// 74 (4Ah) option 1).
	QRData string
	// FiscalMemory is the number of the printer's fiscal memory.
	FiscalMemory string
}

// Options configure a Profile.
type Options struct {
	// Operator is the operator code of the UNP: 4 digits or Latin
	// letters (fiscal.operator).
	Operator string
	// DeviceSerial gives the fiscal printer's individual number, the
	// UNP's first part (two capital letters and six digits, e.g.
	// "DT279013"), read from the printer. Required.
	DeviceSerial func(ctx context.Context) (string, error)
}

// OperatorPattern is the form of the UNP's operator code.
const OperatorPattern = `^[0-9A-Za-z]{4}$`

var (
	operatorRE = regexp.MustCompile(OperatorPattern)
	serialRE   = regexp.MustCompile(`^[A-Z]{2}[0-9]{6}$`)
	// UNPPattern is the form of a unique sale number (the NSale of
	// Datecs 30h: LLDDDDDD-CCCC-DDDDDDD).
	UNPPattern = regexp.MustCompile(`^[A-Z]{2}[0-9]{6}-[0-9A-Za-z]{4}-[0-9]{7}$`)
)

// ErrNoSaleNumber: the configured printer cannot open a receipt with a
// unique sale number, so it cannot fiscalize a Bulgarian sale.
var ErrNoSaleNumber = errors.New("bg: the printer cannot open a receipt with a unique sale number (UNP)")

// Profile implements fiscal.Profile for Bulgaria.
type Profile struct {
	opts Options

	mu     sync.Mutex
	serial string
	sales  map[string]Sale // printed, by invoice, until Completed takes it
}

var _ fiscal.Profile = (*Profile)(nil)

// New checks opts and returns the profile.
func New(opts Options) (*Profile, error) {
	if !operatorRE.MatchString(opts.Operator) {
		return nil, fmt.Errorf("bg: operator code %q: want 4 digits or Latin letters", opts.Operator)
	}
	if opts.DeviceSerial == nil {
		return nil, errors.New("bg: Options.DeviceSerial is required")
	}
	return &Profile{opts: opts, sales: map[string]Sale{}}, nil
}

// Name implements fiscal.Profile.
func (p *Profile) Name() string { return "bg" }

// Requirements implements fiscal.Profile: a fiscal printer, an operator
// code, no certificate and no tax service.
func (p *Profile) Requirements() fiscal.Requirements {
	return fiscal.Requirements{Printer: fiscal.PrinterFiscal, PrinterRequired: true, OperatorPattern: OperatorPattern}
}

// Scheme implements fiscal.Profile: the printer fiscalizes, posgate
// signs nothing.
func (p *Profile) Scheme() fiscal.Scheme { return nil }

// Number implements fiscal.Profile: BU/ordinal/year/device, as posgate's
// own document number; the UNP is the fiscal one.
func (p *Profile) Number(bu string, ord int64, year int, dev string) string {
	return fiscal.DefaultNumber(bu, ord, year, dev)
}

// deviceSerial reads the printer's individual number once.
func (p *Profile) deviceSerial(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.serial != "" {
		return p.serial, nil
	}
	s, err := p.opts.DeviceSerial(ctx)
	if err != nil {
		return "", fmt.Errorf("read the printer's serial number: %w", err)
	}
	s = strings.TrimSpace(s)
	if !serialRE.MatchString(s) {
		return "", fmt.Errorf("printer serial number %q: want two capital letters and six digits", s)
	}
	p.serial = s
	return s, nil
}

// PrepareTx implements fiscal.Profile: a sale takes the next UNP of this
// printer and operator, in its own transaction, so a rolled back invoice
// gives its sequence number back and none repeats. The sequence never
// restarts (it is not the yearly invoice ordinal). A refund or void
// carries the UNP of the sale it reverses, as its storno receipt does.
func (p *Profile) PrepareTx(ctx context.Context, tx *sql.Tx, inv *fiscal.Invoice) error {
	if inv.OriginalInvoiceID != nil {
		var unp sql.NullString
		err := tx.QueryRowContext(ctx, "SELECT json_extract(doc, '$.sale_number') FROM invoices WHERE id = ?", *inv.OriginalInvoiceID).Scan(&unp)
		if err != nil {
			return fmt.Errorf("read the UNP of %s: %w", *inv.OriginalInvoiceID, err)
		}
		if !unp.Valid || unp.String == "" {
			return &fiscal.ValidationError{Field: "original_invoice_id", Message: "the original invoice has no unique sale number"}
		}
		inv.SaleNumber = unp.String
		return nil
	}
	serial, err := p.deviceSerial(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", fiscal.ErrPrinterUnavailable, err)
	}
	var n int64
	// The counters table of invoice ordinals holds the sequence under a
	// key no business unit can have (":" is not in a BU code).
	err = tx.QueryRowContext(ctx, `INSERT INTO invoice_counters (business_unit, device, year, last) VALUES (?, ?, 0, 1)
		ON CONFLICT (business_unit, device, year) DO UPDATE SET last = last + 1 RETURNING last`,
		"unp:"+serial, p.opts.Operator).Scan(&n)
	if err != nil {
		return fmt.Errorf("next unique sale number: %w", err)
	}
	if n > 9_999_999 {
		return fmt.Errorf("unique sale numbers of %s-%s are used up", serial, p.opts.Operator)
	}
	inv.SaleNumber = UNP(serial, p.opts.Operator, n)
	return nil
}

// UNP formats a unique sale number.
func UNP(serial, operator string, seq int64) string {
	return fmt.Sprintf("%s-%s-%07d", serial, operator, seq)
}

// Print implements fiscal.Profile: a fiscal receipt opened with the
// invoice's UNP, with posgate's invoice number as a comment.
func (p *Profile) Print(ctx context.Context, pr device.ReceiptPrinter, inv fiscal.Invoice, r device.Receipt) (device.ReceiptResult, error) {
	sp, ok := pr.(SalePrinter)
	if !ok {
		return device.ReceiptResult{}, ErrNoSaleNumber
	}
	if !UNPPattern.MatchString(inv.SaleNumber) {
		return device.ReceiptResult{}, fmt.Errorf("bg: invoice %s has no valid UNP (%q)", inv.ID, inv.SaleNumber)
	}
	r.Footer = []string{"No " + inv.Number}
	sale, err := sp.PrintSale(ctx, inv.SaleNumber, r)
	if err != nil {
		return device.ReceiptResult{}, err
	}
	p.mu.Lock()
	p.sales[inv.ID] = sale
	p.mu.Unlock()
	return sale.ReceiptResult, nil
}

// Completed implements fiscal.Profile: the closed fiscal receipt is the
// fiscalization, and the event carries what the printer reported of it.
func (p *Profile) Completed(_ context.Context, _ device.ReceiptPrinter, inv fiscal.Invoice, res device.ReceiptResult, fm string) (any, error) {
	p.mu.Lock()
	sale, ok := p.sales[inv.ID]
	delete(p.sales, inv.ID)
	p.mu.Unlock()
	if sale.FiscalMemory != "" {
		fm = sale.FiscalMemory
	}
	data := map[string]any{
		"invoice_id": inv.ID, "invoice_number": inv.Number, "unp": inv.SaleNumber,
		"receipt_number": res.Number, "fiscal_memory_serial": fm, "qr_data": sale.QRData,
	}
	if !res.Time.IsZero() {
		data["closed_at"] = res.Time.UTC()
	}
	if !ok {
		return data, fmt.Errorf("bg: no printed sale of %s", inv.ID)
	}
	return data, nil
}
