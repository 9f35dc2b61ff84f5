package fiscal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/store"
)

// Ledger is a device.PrintLedger on the print_jobs table: the printer
// driver's memory of each document's attempt, committed with
// synchronous=FULL before the driver sends the document, so that after a
// crash or power cut the driver asks the printer instead of printing a
// second receipt. Give it to the driver (datecs.Options.Ledger).
type Ledger struct {
	db *store.DB
}

var _ device.PrintLedger = (*Ledger)(nil)

// NewLedger returns the ledger over db.
func NewLedger(db *store.DB) *Ledger {
	if db == nil {
		panic("fiscal: db is required")
	}
	return &Ledger{db: db}
}

// LoadAttempt implements device.PrintLedger. It reads through the writer
// connection: the attempt saved a moment ago must be seen.
func (l *Ledger) LoadAttempt(ctx context.Context, id string) (device.PrintAttempt, bool, error) {
	var raw sql.NullString
	// A receipt's job, else a marked copy's row (Reprint).
	err := l.db.Write.QueryRowContext(ctx, `SELECT attempt FROM print_jobs WHERE invoice_id = ?
		UNION ALL SELECT attempt FROM print_copies WHERE id = ? LIMIT 1`, id, id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !raw.Valid) {
		return device.PrintAttempt{}, false, nil
	}
	if err != nil {
		return device.PrintAttempt{}, false, fmt.Errorf("load print attempt %s: %w", id, err)
	}
	var a device.PrintAttempt
	if err := json.Unmarshal([]byte(raw.String), &a); err != nil {
		return device.PrintAttempt{}, false, fmt.Errorf("decode print attempt %s: %w", id, err)
	}
	return a, true, nil
}

// SaveAttempt implements device.PrintLedger. It fails for a document
// that has no print job and is no copy: printing without one would leave
// no record.
func (l *Ledger) SaveAttempt(ctx context.Context, a device.PrintAttempt) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode print attempt %s: %w", a.ID, err)
	}
	return l.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE print_jobs SET attempt = ? WHERE invoice_id = ?", string(raw), a.ID)
		if err != nil {
			return fmt.Errorf("save print attempt %s: %w", a.ID, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		res, err = tx.ExecContext(ctx, "UPDATE print_copies SET attempt = ? WHERE id = ?", string(raw), a.ID)
		if err != nil {
			return fmt.Errorf("save print attempt %s: %w", a.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("save print attempt %s: no print job", a.ID)
		}
		return nil
	})
}
