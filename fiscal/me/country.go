package me

import (
	"context"
	"database/sql"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
)

// CountryOptions configure Country.
type CountryOptions struct {
	// Name is the fiscal.country value: "me", or "al" where the same
	// code serves (the IIC and the receipt; registration is "me" only).
	Name string
	// Scheme signs the IIC (fiscal/iic). Required.
	Scheme fiscal.Scheme
	// Width is the receipt's line width, for the verification URL.
	// Default 42.
	Width int
}

// Country is the Montenegrin (and Albanian) fiscal profile: invoices
// are signed with the IIC of the certificate bound to the API key,
// numbered BU/ordinal/year/TCR (InvNum), registered with the tax
// service when one is configured (Profile, the fiscal.Registrar), and
// printed with the IIC, the FIC when known, the verification URL and its
// QR code. fiscalization.completed fires when the service gives the FIC
// (fiscal.Registrations), never on print.
type Country struct{ opts CountryOptions }

var _ fiscal.Profile = (*Country)(nil)

// NewCountry returns the profile.
func NewCountry(opts CountryOptions) *Country {
	if opts.Scheme == nil {
		panic("me: CountryOptions.Scheme is required")
	}
	if opts.Width <= 0 {
		opts.Width = 42
	}
	return &Country{opts: opts}
}

// Name implements fiscal.Profile.
func (c *Country) Name() string { return c.opts.Name }

// Requirements implements fiscal.Profile. Any printer kind: a receipt
// printer is what the law has in mind (docs/profile-me.md); a Datecs
// fiscal printer configured before profiles existed still prints the same
// lines as comments.
func (c *Country) Requirements() fiscal.Requirements {
	return fiscal.Requirements{Certificate: true, Printer: fiscal.PrinterAny, Registration: c.opts.Name == "me"}
}

// Scheme implements fiscal.Profile.
func (c *Country) Scheme() fiscal.Scheme { return c.opts.Scheme }

// Number implements fiscal.Profile: the service's InvNum form.
func (c *Country) Number(bu string, ord int64, year int, dev string) string {
	return fiscal.DefaultNumber(bu, ord, year, dev)
}

// PrepareTx implements fiscal.Profile; the invoice needs nothing more.
func (c *Country) PrepareTx(context.Context, *sql.Tx, *fiscal.Invoice) error { return nil }

// Print implements fiscal.Profile: the receipt ends with the invoice
// number, IIC, FIC when known and the verification URL, then its QR code.
func (c *Country) Print(ctx context.Context, p device.ReceiptPrinter, inv fiscal.Invoice, r device.Receipt) (device.ReceiptResult, error) {
	r.Footer, r.QR = fiscal.SignatureFooter(inv, c.opts.Width)
	return p.PrintReceipt(ctx, r)
}

// Completed implements fiscal.Profile: printing completes nothing; the
// tax service's FIC does.
func (c *Country) Completed(context.Context, device.ReceiptPrinter, fiscal.Invoice, device.ReceiptResult, string) (any, error) {
	return nil, nil
}
