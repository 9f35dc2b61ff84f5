package fiscal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/posgate/posgate/device"
)

// Printer kinds a profile may require.
const (
	PrinterAny     = ""       // any configured printer, or none
	PrinterReceipt = "escpos" // an ordinary receipt printer (ESC/POS)
	PrinterFiscal  = "fiscal" // a certified fiscal printer (Datecs)
)

// NoCertificate is the certificate_id of an invoice of a profile that
// signs nothing (a reserved row of the certificates table that can never
// sign: migration 0010).
const NoCertificate = "cert_none"

// Requirements are what a profile needs of the configuration; cmd/posgate
// refuses a configuration that does not fit them, naming the key.
type Requirements struct {
	// Certificate: invoices are signed, so the API key must be bound to a
	// certificate with the taxpayer's TIN.
	Certificate bool
	// Printer is the kind of printer that prints the receipts, and
	// PrinterRequired says a printer must be configured.
	Printer         string
	PrinterRequired bool
	// Registration: the profile can register invoices with a tax service
	// (fiscal.service_url); others refuse the key.
	Registration bool
	// OperatorPattern, when set, is the form fiscal.operator must have
	// (a regular expression); the key is then required.
	OperatorPattern string
}

// Profile is a country's fiscal pipeline (DESIGN §5): what is signed and
// how, the invoice's number and fields, what the receipt shows and on
// which printer, and when fiscalization.completed fires. One package per
// country implements it (fiscal/me, fiscal/bg, fiscal/none); cmd/posgate
// picks one in a single switch and nothing else names a country.
type Profile interface {
	// Name is the fiscal.country value, e.g. "me".
	Name() string
	// Requirements are checked against the configuration at start.
	Requirements() Requirements
	// Scheme signs invoices; nil signs nothing (no certificate needed).
	Scheme() Scheme
	// Number is the invoice number of the ordinal-th invoice of a year,
	// business unit and device (gapless; Invoices takes the ordinal).
	Number(businessUnit string, ordinal int64, year int, device string) string
	// PrepareTx completes a numbered invoice in its creating transaction
	// (a unique sale number, say); a *ValidationError refuses it.
	PrepareTx(ctx context.Context, tx *sql.Tx, inv *Invoice) error
	// Print prints the invoice's receipt r (its lines and payments) on p,
	// adding what the profile shows (IIC, FIC, QR; a sale number).
	Print(ctx context.Context, p device.ReceiptPrinter, inv Invoice, r device.Receipt) (device.ReceiptResult, error)
	// Completed returns the data of fiscalization.completed for a
	// receipt just printed, or nil when printing does not complete the
	// fiscalization (it completes with the tax service, or never).
	Completed(ctx context.Context, p device.ReceiptPrinter, inv Invoice, res device.ReceiptResult, fiscalMemory string) (any, error)
}

// SignatureFooter is what a receipt shows of a signed invoice: its
// number, IIC, FIC when known and the verification URL in lines of
// width, and the QR payload (the verification URL).
func SignatureFooter(inv Invoice, width int) (lines []string, qr string) {
	if width <= 0 {
		width = 42
	}
	lines = append(lines, "No "+inv.Number, "IIC "+inv.Signature.Code)
	if f := inv.Fiscalization; f != nil && f.FIC != "" {
		lines = append(lines, "FIC "+f.FIC)
	}
	lines = append(lines, chunk(inv.Signature.VerifyURL, width)...)
	return lines, inv.Signature.VerifyURL
}

// DefaultNumber is the BU/ordinal/year/device number of DESIGN §5.
func DefaultNumber(businessUnit string, ordinal int64, year int, device string) string {
	return fmt.Sprintf("%s/%d/%d/%s", businessUnit, ordinal, year, device)
}

// ErrPrinterUnavailable: the profile needs the printer to issue an
// invoice (bg: its fiscal memory serial for the UNP) and it does not
// answer. Temporary: the API answers 503.
var ErrPrinterUnavailable = errors.New("the fiscal printer is not available")
