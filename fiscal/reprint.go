package fiscal

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
)

// Events of reprints and requeued print jobs.
const (
	EventReceiptReprinted = "receipt.reprinted"
	EventPrintJobRequeued = "print_job.requeued"
)

// CopyMark heads a reprinted receipt (and ends it), so a copy is never
// taken for the original.
const CopyMark = "COPY / DUPLIKAT"

// Errors of Reprint and Requeue.
var (
	ErrPrintJobNotFound = errors.New("the invoice has no print job")
	// ErrNotPrinted: a copy is of a printed receipt; a pending one
	// prints by itself and a dead one is requeued.
	ErrNotPrinted = errors.New("the receipt is not printed yet")
	// ErrPrintedAlready: a printed job is not requeued (print a copy).
	ErrPrintedAlready = errors.New("the print job is printed; print a copy instead")
	// ErrCopyOnFiscalPrinter: a fiscal printer would fiscalize a copy as
	// a second sale; it prints a duplicate of its last receipt only, by
	// its own command.
	ErrCopyOnFiscalPrinter = errors.New("a fiscal printer cannot print a marked copy of a receipt; it prints a duplicate of its last receipt only")
)

// Copy is a reprinted receipt.
type Copy struct {
	InvoiceID string `json:"invoice_id"`
	CopyID    string `json:"copy_id"`
	PrinterID string `json:"printer_id"`
	// Recovered: this copy had been printed by an earlier request with
	// the same key; nothing was printed now.
	Recovered bool   `json:"recovered"`
	PrintedAt string `json:"printed_at"`
}

// Reprint prints a copy of an invoice's printed receipt, marked
// CopyMark at its head and foot, on the job's printer (a receipt
// printer: ErrCopyOnFiscalPrinter otherwise), and emits
// receipt.reprinted. key makes it idempotent: one copy per key, however
// often it is asked (the printer driver's ledger keeps the copy's ID).
func (p *PrintJobs) Reprint(ctx context.Context, invoiceID, key string) (Copy, error) {
	if _, ok := p.opts.Printer.(device.SlipPrinter); !ok {
		return Copy{}, ErrCopyOnFiscalPrinter
	}
	var (
		state string
		doc   []byte
	)
	err := p.db.Read.QueryRowContext(ctx, `SELECT j.state, i.doc FROM print_jobs j JOIN invoices i ON i.id = j.invoice_id
		WHERE j.invoice_id = ? AND j.printer_id = ?`, invoiceID, p.opts.PrinterID).Scan(&state, &doc)
	if errors.Is(err, sql.ErrNoRows) {
		return Copy{}, ErrPrintJobNotFound
	}
	if err != nil {
		return Copy{}, fmt.Errorf("read print job %s: %w", invoiceID, err)
	}
	if state != PrintPrinted {
		return Copy{}, fmt.Errorf("%w (%s)", ErrNotPrinted, state)
	}
	var inv Invoice
	if err := json.Unmarshal(doc, &inv); err != nil {
		return Copy{}, fmt.Errorf("decode invoice %s: %w", invoiceID, err)
	}
	if p.opts.AwaitFIC != nil {
		if fic := p.opts.AwaitFIC(ctx, inv.ID); fic != "" {
			inv.Fiscalization = &FiscalizationStatus{Status: RegCompleted, FIC: fic}
		}
	}
	sum := sha256.Sum256([]byte(key))
	c := Copy{InvoiceID: inv.ID, CopyID: inv.ID + "-copy-" + hex.EncodeToString(sum[:8]), PrinterID: p.opts.PrinterID}
	orig, err := p.originalReceipt(ctx, inv)
	if err != nil {
		return Copy{}, err
	}
	// The copy's row first: the driver's ledger keeps its attempt there.
	if err := p.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO print_copies (id, invoice_id, printer_id, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, c.CopyID, inv.ID, p.opts.PrinterID, store.Millis(p.opts.Now()))
		return err
	}); err != nil {
		return Copy{}, fmt.Errorf("record copy of %s: %w", inv.ID, err)
	}
	r := receiptBody(inv, p.opts.Receipt, orig)
	r.ID = c.CopyID
	r.Lines = append([]device.Line{{Comment: CopyMark}}, r.Lines...)
	var res device.ReceiptResult
	if p.opts.Profile != nil {
		res, err = p.opts.Profile.Print(ctx, p.opts.Printer, inv, r)
	} else {
		r.Footer, r.QR = SignatureFooter(inv, p.opts.Receipt.Width)
		res, err = p.opts.Printer.PrintReceipt(ctx, r)
	}
	if err != nil {
		return Copy{}, fmt.Errorf("print copy of %s: %w", inv.ID, err)
	}
	c.Recovered = res.Recovered && !res.Finished
	c.PrintedAt = res.Time.UTC().Format("2006-01-02T15:04:05.000Z")
	if c.Recovered {
		return c, nil // the event fired with the first print
	}
	p.opts.Log.Info().Str(logkey.InvoiceID, inv.ID).Str("copy_id", c.CopyID).Msg("receipt copy printed")
	err = p.db.InTx(ctx, func(tx *sql.Tx) error {
		return p.opts.EmitTx(ctx, tx, EventReceiptReprinted, map[string]any{
			"invoice_id": inv.ID, "invoice_number": inv.Number, "copy_id": c.CopyID, "printer_id": p.opts.PrinterID,
			"printed_at": c.PrintedAt})
	})
	if err != nil {
		return c, fmt.Errorf("enqueue %s: %w", EventReceiptReprinted, err)
	}
	return c, nil
}

// Requeue makes a dead print job pending again, due now with a fresh
// attempt budget, emits print_job.requeued and wakes the runner. A
// pending job is left as it is (requeued false): asking twice is
// harmless. A printed one is ErrPrintedAlready. The printer driver's
// ledger still guards the document: a fiscal printer is asked for its
// last document before anything is re-sent, and a receipt printer
// re-sends an interrupted job only as a marked copy.
func (p *PrintJobs) Requeue(ctx context.Context, invoiceID string) (st PrintStatus, requeued bool, err error) {
	now := p.opts.Now()
	err = p.db.InTx(ctx, func(tx *sql.Tx) error {
		var state, lastError string
		var attempts int
		err := tx.QueryRowContext(ctx, "SELECT state, attempts, last_error FROM print_jobs WHERE invoice_id = ? AND printer_id = ?",
			invoiceID, p.opts.PrinterID).Scan(&state, &attempts, &lastError)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrPrintJobNotFound
		}
		if err != nil {
			return fmt.Errorf("read print job %s: %w", invoiceID, err)
		}
		switch state {
		case PrintPrinted:
			return ErrPrintedAlready
		case PrintPending:
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE print_jobs SET state = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ?
			WHERE invoice_id = ?`, store.Millis(now), store.Millis(now), invoiceID); err != nil {
			return fmt.Errorf("requeue print job %s: %w", invoiceID, err)
		}
		requeued = true
		return p.opts.EmitTx(ctx, tx, EventPrintJobRequeued, map[string]any{
			"invoice_id": invoiceID, "printer_id": p.opts.PrinterID, "previous_attempts": attempts, "last_error": lastError})
	})
	if err != nil {
		return PrintStatus{}, false, err
	}
	if requeued {
		p.mu.Lock()
		delete(p.waits, invoiceID)
		p.mu.Unlock()
		p.opts.Log.Info().Str(logkey.InvoiceID, invoiceID).Msg("dead print job requeued")
		p.Wake()
	}
	ps, err := printStatus(ctx, p.db.Read, invoiceID)
	if err != nil || ps == nil {
		return PrintStatus{}, requeued, err
	}
	return *ps, requeued, nil
}
