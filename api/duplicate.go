package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/outbox"
)

// CodeNotFiscalPrinter refuses a fiscal-printer operation (the duplicate
// of the last receipt) on a printer that is not a fiscal printer.
const CodeNotFiscalPrinter = "NOT_FISCAL_PRINTER"

// EventReceiptDuplicated is emitted when a fiscal printer printed the
// duplicate copy of its last receipt.
const EventReceiptDuplicated = "receipt.duplicated"

// duplicator is a fiscal printer that prints the duplicate of its last
// receipt (Datecs: 6Dh) and says which receipt that is.
type duplicator interface {
	Duplicate(ctx context.Context) error
	LastReceipt(ctx context.Context) (device.LastReceipt, error)
}

// duplicateResult answers POST /v1/printers/{id}/duplicate and is the
// data of receipt.duplicated.
type duplicateResult struct {
	PrinterID     string    `json:"printer_id"`
	ReceiptNumber int       `json:"receipt_number"`
	ReceiptTime   time.Time `json:"receipt_time,omitzero"`
	DuplicatedAt  time.Time `json:"duplicated_at"`
}

// handlePrinterDuplicate prints the duplicate copy of a fiscal printer's
// last receipt and emits receipt.duplicated. It runs under the
// idempotency middleware: a retry with the same Idempotency-Key gets the
// first answer and prints nothing. A receipt printer (ESC/POS) or a
// printer without the command answers 409 NOT_FISCAL_PRINTER.
func handlePrinterDuplicate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		notFiscal := &Error{Code: CodeNotFiscalPrinter, Status: http.StatusConflict, Message: "printer " + id + " is not a fiscal printer: it has no duplicate of the last receipt"}
		if _, ok := d.ReceiptPrinters[id]; ok {
			writeError(w, r, d.Log, notFiscal)
			return
		}
		p, ok := d.Printers[id]
		if !ok {
			writeError(w, r, d.Log, notFound("printer "+id))
			return
		}
		dp, ok := p.(duplicator)
		if !ok {
			writeError(w, r, d.Log, notFiscal)
			return
		}
		// Which receipt the copy is of, read first: once printed, the
		// answer names it even if the line drops right after.
		last, err := dp.LastReceipt(r.Context())
		if err != nil {
			writeError(w, r, d.Log, printerError(err))
			return
		}
		if err := dp.Duplicate(r.Context()); err != nil {
			writeError(w, r, d.Log, printerError(err))
			return
		}
		b := duplicateResult{PrinterID: id, ReceiptNumber: last.Number, ReceiptTime: last.Time, DuplicatedAt: time.Now().UTC()}
		data, err := json.Marshal(b)
		if err != nil {
			writeError(w, r, d.Log, fmt.Errorf("encode %s: %w", EventReceiptDuplicated, err))
			return
		}
		if err := d.Store.InTx(r.Context(), func(tx *sql.Tx) error {
			_, err := outbox.EnqueueTx(r.Context(), tx, outbox.Event{Type: EventReceiptDuplicated, Data: data})
			return err
		}); err != nil {
			// The copy is printed; the event is lost with this answer. A
			// retry is refused by the printer (one copy per receipt).
			writeError(w, r, d.Log, err)
			return
		}
		writeJSON(w, http.StatusCreated, b)
	})
}
