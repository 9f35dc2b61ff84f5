package none

import (
	"context"
	"database/sql"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
)

// Profile implements fiscal.Profile for no fiscal duty.
type Profile struct{}

var _ fiscal.Profile = Profile{}

// Name implements fiscal.Profile.
func (Profile) Name() string { return "none" }

// Requirements implements fiscal.Profile: no certificate, any printer
// or none, no tax service.
func (Profile) Requirements() fiscal.Requirements { return fiscal.Requirements{} }

// Scheme implements fiscal.Profile: nothing is signed.
func (Profile) Scheme() fiscal.Scheme { return nil }

// Number implements fiscal.Profile: BU/ordinal/year/device.
func (Profile) Number(bu string, ord int64, year int, dev string) string {
	return fiscal.DefaultNumber(bu, ord, year, dev)
}

// PrepareTx implements fiscal.Profile; nothing to add.
func (Profile) PrepareTx(context.Context, *sql.Tx, *fiscal.Invoice) error { return nil }

// Print implements fiscal.Profile: the lines, the payments and the
// invoice number.
func (Profile) Print(ctx context.Context, p device.ReceiptPrinter, inv fiscal.Invoice, r device.Receipt) (device.ReceiptResult, error) {
	r.Footer = []string{"No " + inv.Number}
	return p.PrintReceipt(ctx, r)
}

// Completed implements fiscal.Profile: there is no fiscalization.
func (Profile) Completed(context.Context, device.ReceiptPrinter, fiscal.Invoice, device.ReceiptResult, string) (any, error) {
	return nil, nil
}
