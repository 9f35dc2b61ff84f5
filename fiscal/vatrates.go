package fiscal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/store"
)

// ErrPrinterRatesUnknown: the printer's VAT rates were never read (it has
// not connected since posgate was installed), so no invoice can be
// checked against them yet. It is temporary.
var ErrPrinterRatesUnknown = errors.New("the printer's VAT rates are not known yet: it has not connected")

// RateDisabled marks a printer group that takes no sales: 100.00 %, the
// value Datecs printers report for it.
const RateDisabled = 100_00

// PrinterRates keeps the VAT rates programmed in each printer's groups
// A…H, as the printer reported them on its last connection.
type PrinterRates struct {
	db  *store.DB
	now func() time.Time
}

// NewPrinterRates returns the rates kept in db.
func NewPrinterRates(db *store.DB) *PrinterRates {
	if db == nil {
		panic("fiscal: db is required")
	}
	return &PrinterRates{db: db, now: time.Now}
}

// Save records the rates printerID reported: hundredths of a percent per
// group A…H, RateDisabled for a disabled group.
func (r *PrinterRates) Save(ctx context.Context, printerID string, rates [8]int64) error {
	b, err := json.Marshal(rates)
	if err != nil {
		return fmt.Errorf("encode VAT rates of %s: %w", printerID, err)
	}
	return r.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO printer_vat_rates (printer_id, rates, read_at) VALUES (?, ?, ?)
			ON CONFLICT (printer_id) DO UPDATE SET rates = excluded.rates, read_at = excluded.read_at`,
			printerID, string(b), store.Millis(r.now()))
		if err != nil {
			return fmt.Errorf("save VAT rates of %s: %w", printerID, err)
		}
		return nil
	})
}

// Load returns the rates printerID reported last, or
// ErrPrinterRatesUnknown.
func (r *PrinterRates) Load(ctx context.Context, printerID string) ([8]int64, error) {
	var raw string
	err := r.db.Read.QueryRowContext(ctx, "SELECT rates FROM printer_vat_rates WHERE printer_id = ?", printerID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return [8]int64{}, ErrPrinterRatesUnknown
	}
	if err != nil {
		return [8]int64{}, fmt.Errorf("read VAT rates of %s: %w", printerID, err)
	}
	var v [8]int64
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return [8]int64{}, fmt.Errorf("decode VAT rates of %s: %w", printerID, err)
	}
	return v, nil
}

// Wait is Load that waits up to d for a printer that has not reported its
// rates yet (it is connecting after a start), polling.
func (r *PrinterRates) Wait(ctx context.Context, printerID string, d time.Duration) ([8]int64, error) {
	deadline := time.Now().Add(d)
	for {
		v, err := r.Load(ctx, printerID)
		if !errors.Is(err, ErrPrinterRatesUnknown) || !time.Now().Before(deadline) {
			return v, err
		}
		t := time.NewTimer(min(50*time.Millisecond, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
	}
}

// GroupsOf maps each rate the printer has to its group 1…8 (A…H); of
// groups with one rate, the first.
func GroupsOf(rates [8]int64) map[int64]int {
	m := map[int64]int{}
	for g, r := range rates {
		if r < 0 || r >= RateDisabled {
			continue
		}
		if _, dup := m[r]; !dup {
			m[r] = g + 1
		}
	}
	return m
}

// RatesPrinter is a printer that says which VAT rates its groups have,
// as read on its current connection (datecs.Device.ProgrammedRates).
// PrintJobs maps an invoice's rates with them just before printing.
type RatesPrinter interface {
	ProgrammedRates(ctx context.Context) ([8]int64, error)
}
