package fiscal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/store"
)

// Errors of PrinterOps.
var (
	// ErrOpMismatch: the request's key was used for another operation.
	ErrOpMismatch = errors.New("the idempotency key was used for another printer operation")
	// ErrOpUncertain: an interrupted operation's counters moved in a way
	// it cannot explain; nothing is sent, a person checks the journal.
	ErrOpUncertain = errors.New("the printer's counters do not tell whether the interrupted operation printed")
)

// Printer operation kinds.
const (
	OpXReport = "x"
	OpZReport = "z"
	OpCashIn  = "cash_in"
	OpCashOut = "cash_out"
)

// OpPrinter is what PrinterOps needs of a fiscal printer
// (device.Printer has it).
type OpPrinter interface {
	XReport(ctx context.Context) (device.Report, error)
	ZReport(ctx context.Context) (device.Report, error)
	Cash(ctx context.Context, kind device.CashKind, amount int64) (device.CashState, error)
	LastReceipt(ctx context.Context) (device.LastReceipt, error)
}

// Op identifies one requested operation: the API key and the request's
// Idempotency-Key. An empty Key makes the operation unrepeatable-safe:
// it is neither recorded nor looked up.
type Op struct {
	Scope, Key string
}

// OpResult is what an operation printed. A report recovered after a
// crash has its Number but not its totals (the printer returns them only
// in the answer that was lost); Recovered says so.
type OpResult struct {
	Report    *device.Report    `json:"report,omitempty"`
	Cash      *device.CashState `json:"cash,omitempty"`
	Recovered bool              `json:"recovered,omitempty"`
}

// opBefore is the printer's counters before the operation was sent.
type opBefore struct {
	ZNumber int   `json:"z_number,omitempty"`
	CashIn  int64 `json:"cash_in,omitempty"`
	CashOut int64 `json:"cash_out,omitempty"`
}

// PrinterOps runs X and Z reports and cash operations so that a retry
// never prints one twice: the operation and the printer's counters are
// recorded (synchronous=FULL) before the command is sent, and a retry of
// an operation left pending asks the printer whether it happened: a Z
// report by the last Z number (7Bh), cash in/out by the day's cash in
// and out (46h with amount 0). An X report changes no counter; an
// interrupted one is printed again (it is not a fiscal record).
type PrinterOps struct {
	db  *store.DB
	now func() time.Time

	mu sync.Mutex // one operation at a time: counters must not move meanwhile
}

// NewPrinterOps returns PrinterOps over db.
func NewPrinterOps(db *store.DB) *PrinterOps {
	if db == nil {
		panic("fiscal: db is required")
	}
	return &PrinterOps{db: db, now: time.Now}
}

// Report prints an X (kind OpXReport) or Z (OpZReport) report on p once
// per op. Errors: the printer's; ErrOpMismatch; ErrOpUncertain.
func (o *PrinterOps) Report(ctx context.Context, p OpPrinter, printerID, kind string, op Op) (OpResult, error) {
	if kind != OpXReport && kind != OpZReport {
		return OpResult{}, fmt.Errorf("printer report: kind %q", kind)
	}
	return o.run(ctx, p, printerID, kind, 0, op)
}

// Cash puts amount into (device.CashIn) or takes it out of the drawer
// once per op. Errors as Report.
func (o *PrinterOps) Cash(ctx context.Context, p OpPrinter, printerID string, kind device.CashKind, amount int64, op Op) (OpResult, error) {
	k := OpCashIn
	if kind == device.CashOut {
		k = OpCashOut
	}
	return o.run(ctx, p, printerID, k, amount, op)
}

func (o *PrinterOps) run(ctx context.Context, p OpPrinter, printerID, kind string, amount int64, op Op) (OpResult, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if op.Key == "" {
		return send(ctx, p, kind, amount)
	}
	rec, found, err := o.load(ctx, op)
	if err != nil {
		return OpResult{}, err
	}
	if found {
		if rec.printerID != printerID || rec.kind != kind || rec.amount != amount {
			return OpResult{}, ErrOpMismatch
		}
		if rec.done {
			return rec.result, nil
		}
		res, happened, err := o.resolve(ctx, p, rec)
		if err != nil {
			return OpResult{}, err
		}
		if happened {
			return res, o.finish(ctx, op, res)
		}
		// It never reached the printer: send it now, under the record
		// already made.
	} else {
		before, err := counters(ctx, p, kind)
		if err != nil {
			return OpResult{}, err
		}
		if err := o.begin(ctx, op, printerID, kind, amount, before); err != nil {
			return OpResult{}, err
		}
	}
	res, err := send(ctx, p, kind, amount)
	if err != nil {
		var pe *device.PrinterError
		if errors.As(err, &pe) {
			// Refused: nothing printed; the same request may try again.
			if derr := o.drop(context.WithoutCancel(ctx), op); derr != nil {
				return OpResult{}, errors.Join(err, derr)
			}
		}
		// Anything else (no answer, line lost) leaves the record pending:
		// the retry asks the printer.
		return OpResult{}, err
	}
	return res, o.finish(context.WithoutCancel(ctx), op, res)
}

// counters reads what the operation will change, before it is sent.
func counters(ctx context.Context, p OpPrinter, kind string) (opBefore, error) {
	switch kind {
	case OpZReport:
		lr, err := p.LastReceipt(ctx)
		if err != nil {
			return opBefore{}, fmt.Errorf("read the last Z number: %w", err)
		}
		return opBefore{ZNumber: lr.ZNumber}, nil
	case OpCashIn, OpCashOut:
		cs, err := p.Cash(ctx, device.CashIn, 0) // amount 0 only reads the drawer
		if err != nil {
			return opBefore{}, fmt.Errorf("read the drawer: %w", err)
		}
		return opBefore{CashIn: cs.In, CashOut: cs.Out}, nil
	}
	return opBefore{}, nil
}

// resolve asks the printer whether the pending operation rec happened.
func (o *PrinterOps) resolve(ctx context.Context, p OpPrinter, rec opRecord) (OpResult, bool, error) {
	now, err := counters(ctx, p, rec.kind)
	if err != nil {
		return OpResult{}, false, err
	}
	b := rec.before
	switch rec.kind {
	case OpZReport:
		switch now.ZNumber {
		case b.ZNumber:
			return OpResult{}, false, nil
		case b.ZNumber + 1:
			return OpResult{Report: &device.Report{Number: now.ZNumber}, Recovered: true}, true, nil
		}
		return OpResult{}, false, fmt.Errorf("%w: Z number %d, %d before the report", ErrOpUncertain, now.ZNumber, b.ZNumber)
	case OpCashIn, OpCashOut:
		in, out := now.CashIn-b.CashIn, now.CashOut-b.CashOut
		want := [2]int64{rec.amount, 0}
		if rec.kind == OpCashOut {
			want = [2]int64{0, rec.amount}
		}
		switch [2]int64{in, out} {
		case [2]int64{0, 0}:
			return OpResult{}, false, nil
		case want:
			cs, err := p.Cash(ctx, device.CashIn, 0)
			if err != nil {
				return OpResult{}, false, fmt.Errorf("read the drawer: %w", err)
			}
			return OpResult{Cash: &cs, Recovered: true}, true, nil
		}
		return OpResult{}, false, fmt.Errorf("%w: cash in/out moved by %d/%d since the operation was recorded", ErrOpUncertain, in, out)
	}
	return OpResult{}, false, nil // an X report: print it again
}

func send(ctx context.Context, p OpPrinter, kind string, amount int64) (OpResult, error) {
	switch kind {
	case OpXReport, OpZReport:
		report := p.XReport
		if kind == OpZReport {
			report = p.ZReport
		}
		rep, err := report(ctx)
		if err != nil {
			return OpResult{}, err
		}
		return OpResult{Report: &rep}, nil
	default:
		k := device.CashIn
		if kind == OpCashOut {
			k = device.CashOut
		}
		cs, err := p.Cash(ctx, k, amount)
		if err != nil {
			return OpResult{}, err
		}
		return OpResult{Cash: &cs}, nil
	}
}

type opRecord struct {
	printerID, kind string
	amount          int64
	done            bool
	before          opBefore
	result          OpResult
}

func (o *PrinterOps) load(ctx context.Context, op Op) (opRecord, bool, error) {
	var (
		r             opRecord
		state, before string
		result        sql.NullString
	)
	// The writer connection: a record made a moment ago must be seen.
	err := o.db.Write.QueryRowContext(ctx, `SELECT printer_id, kind, amount, state, before, result FROM printer_ops
		WHERE key_id = ? AND idempotency_key = ?`, op.Scope, op.Key).Scan(&r.printerID, &r.kind, &r.amount, &state, &before, &result)
	if errors.Is(err, sql.ErrNoRows) {
		return opRecord{}, false, nil
	}
	if err != nil {
		return opRecord{}, false, fmt.Errorf("read printer operation: %w", err)
	}
	r.done = state == "done"
	if err := json.Unmarshal([]byte(before), &r.before); err != nil {
		return opRecord{}, false, fmt.Errorf("decode printer operation: %w", err)
	}
	if result.Valid {
		if err := json.Unmarshal([]byte(result.String), &r.result); err != nil {
			return opRecord{}, false, fmt.Errorf("decode printer operation: %w", err)
		}
	}
	return r, true, nil
}

// begin records the operation durably before it is sent.
func (o *PrinterOps) begin(ctx context.Context, op Op, printerID, kind string, amount int64, b opBefore) error {
	raw, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode printer operation: %w", err)
	}
	now := store.Millis(o.now())
	return o.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO printer_ops (key_id, idempotency_key, printer_id, kind, amount, state,
			before, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
			op.Scope, op.Key, printerID, kind, amount, string(raw), now, now)
		if err != nil {
			return fmt.Errorf("record printer operation: %w", err)
		}
		return nil
	})
}

func (o *PrinterOps) finish(ctx context.Context, op Op, res OpResult) error {
	raw, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode printer operation result: %w", err)
	}
	return o.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE printer_ops SET state = 'done', result = ?, updated_at = ?
			WHERE key_id = ? AND idempotency_key = ?`, string(raw), store.Millis(o.now()), op.Scope, op.Key)
		if err != nil {
			return fmt.Errorf("record printer operation result: %w", err)
		}
		return nil
	})
}

func (o *PrinterOps) drop(ctx context.Context, op Op) error {
	return o.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM printer_ops WHERE key_id = ? AND idempotency_key = ? AND state = 'pending'`,
			op.Scope, op.Key)
		if err != nil {
			return fmt.Errorf("forget refused printer operation: %w", err)
		}
		return nil
	})
}
