package api

import (
	"errors"
	"net/http"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/logkey"
)

// printJobsOff: no printer prints invoices on this device.
func printJobsOff() *Error {
	return &Error{Code: CodeUnavailable, Message: "no printer prints invoices on this device ([[printers]])"}
}

// printJobError maps fiscal's reprint and requeue errors.
func printJobError(err error) error {
	switch {
	case errors.Is(err, fiscal.ErrPrintJobNotFound), errors.Is(err, fiscal.ErrInvoiceNotFound):
		return notFound("print job")
	case errors.Is(err, fiscal.ErrNotPrinted), errors.Is(err, fiscal.ErrPrintedAlready), errors.Is(err, fiscal.ErrCopyOnFiscalPrinter):
		return &Error{Code: CodeConflict, Message: err.Error()}
	case fiscal.PrinterNotReady(err), errors.Is(err, device.ErrPaperOut), errors.Is(err, device.ErrCoverOpen):
		return &Error{Code: CodeDeviceUnavailable, Message: err.Error() + "; retry with the same Idempotency-Key once the printer is ready"}
	}
	var pe *device.PrinterError
	if errors.As(err, &pe) {
		return &Error{Code: CodePrinterRejected, Message: err.Error()}
	}
	return err
}

// handleInvoiceReprint prints a copy of an invoice's printed receipt,
// marked COPY / DUPLIKAT, on a receipt printer (POST
// /v1/invoices/{id}/reprint). One copy per Idempotency-Key; event
// receipt.reprinted.
func handleInvoiceReprint(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.PrintJobs == nil {
			writeError(w, r, d.Log, printJobsOff())
			return
		}
		id := r.PathValue("id")
		key := keyFrom(r.Context()).ID + "\n" + r.Header.Get("Idempotency-Key")
		c, err := d.PrintJobs.Reprint(r.Context(), id, key)
		if err != nil {
			writeError(w, r, d.Log, printJobError(err))
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
}

// printJobRequeueResponse is the answer of POST /v1/print-jobs/{id}/requeue.
type printJobRequeueResponse struct {
	InvoiceID string `json:"invoice_id"`
	// Requeued is false when the job was pending already (nothing done).
	Requeued bool               `json:"requeued"`
	Print    fiscal.PrintStatus `json:"print"`
}

// handlePrintJobRequeue makes a dead print job pending again (admin,
// POST /v1/print-jobs/{id}/requeue, id the invoice's); event
// print_job.requeued. A pending job answers as it is.
func handlePrintJobRequeue(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.PrintJobs == nil {
			writeError(w, r, d.Log, printJobsOff())
			return
		}
		id := r.PathValue("id")
		st, requeued, err := d.PrintJobs.Requeue(r.Context(), id)
		if err != nil {
			writeError(w, r, d.Log, printJobError(err))
			return
		}
		d.Log.Info().Str(logkey.InvoiceID, id).Bool("requeued", requeued).Msg("print job requeue asked")
		writeJSON(w, http.StatusOK, printJobRequeueResponse{InvoiceID: id, Requeued: requeued, Print: st})
	})
}
