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
	// PrintSale prints r as a fiscal receipt opened with the unique
	// sale number unp, idempotently per r.ID like PrintReceipt.
	PrintSale(ctx context.Context, unp string, r device.Receipt) (device.ReceiptResult, error)
	// LastReceiptQR returns the QR data of the last fiscal receipt the
	// printer closed (Datecs command 74h).
	LastReceiptQR(ctx context.Context) (string, error)
}

// Options configure a Profile.
type Options struct {
	// Operator is the operator code of the UNP: 4 digits or Latin
	// letters (fiscal.operator).
	Operator string
	// FiscalMemory gives the fiscal printer's fiscal memory serial (8
	// characters), read from the printer. Required.
	FiscalMemory func(ctx context.Context) (string, error)
}

// OperatorPattern is the form of the UNP's operator code.
const OperatorPattern = `^[0-9A-Za-z]{4}$`

var (
	operatorRE = regexp.MustCompile(OperatorPattern)
	serialRE   = regexp.MustCompile(`^[0-9A-Z]{8}$`)
	// UNPPattern is the form of a unique sale number.
	UNPPattern = regexp.MustCompile(`^[0-9A-Z]{8}-[0-9A-Za-z]{4}-[0-9]{7}$`)
)

// ErrNoSaleNumber: the configured printer cannot open a receipt with a
// unique sale number, so it cannot fiscalize a Bulgarian sale.
var ErrNoSaleNumber = errors.New("bg: the printer cannot open a receipt with a unique sale number (UNP)")

// Profile implements fiscal.Profile for Bulgaria.
type Profile struct {
	opts Options

	mu     sync.Mutex
	serial string
}

var _ fiscal.Profile = (*Profile)(nil)

// New checks opts and returns the profile.
func New(opts Options) (*Profile, error) {
	if !operatorRE.MatchString(opts.Operator) {
		return nil, fmt.Errorf("bg: operator code %q: want 4 digits or Latin letters", opts.Operator)
	}
	if opts.FiscalMemory == nil {
		return nil, errors.New("bg: Options.FiscalMemory is required")
	}
	return &Profile{opts: opts}, nil
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

// fiscalMemory reads the printer's serial once.
func (p *Profile) fiscalMemory(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.serial != "" {
		return p.serial, nil
	}
	s, err := p.opts.FiscalMemory(ctx)
	if err != nil {
		return "", fmt.Errorf("read the fiscal memory serial: %w", err)
	}
	s = strings.ToUpper(strings.TrimSpace(s))
	if !serialRE.MatchString(s) {
		return "", fmt.Errorf("fiscal memory serial %q: want 8 digits or capital letters", s)
	}
	p.serial = s
	return s, nil
}

// PrepareTx implements fiscal.Profile: the invoice takes the next UNP of
// this fiscal memory and operator, in its own transaction, so a rolled
// back invoice gives its sequence number back and none repeats. The
// sequence never restarts (it is not the yearly invoice ordinal).
func (p *Profile) PrepareTx(ctx context.Context, tx *sql.Tx, inv *fiscal.Invoice) error {
	serial, err := p.fiscalMemory(ctx)
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
	return sp.PrintSale(ctx, inv.SaleNumber, r)
}

// Completed implements fiscal.Profile: the closed fiscal receipt is the
// fiscalization. Its QR data is read back from the printer; if that
// fails the event still fires, without it, and the error says why.
func (p *Profile) Completed(ctx context.Context, pr device.ReceiptPrinter, inv fiscal.Invoice, res device.ReceiptResult, fm string) (any, error) {
	if fm == "" {
		fm, _, _ = strings.Cut(inv.SaleNumber, "-")
	}
	data := map[string]any{
		"invoice_id": inv.ID, "invoice_number": inv.Number, "unp": inv.SaleNumber,
		"receipt_number": res.Number, "fiscal_memory_serial": fm, "qr_data": "",
	}
	if !res.Time.IsZero() {
		data["closed_at"] = res.Time.UTC()
	}
	sp, ok := pr.(SalePrinter)
	if !ok {
		return data, ErrNoSaleNumber
	}
	qr, err := sp.LastReceiptQR(ctx)
	if err != nil {
		return data, fmt.Errorf("read the receipt's QR data: %w", err)
	}
	data["qr_data"] = qr
	return data, nil
}
