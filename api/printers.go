package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/observe"
)

// reportPrinter is what the printer routes need from a fiscal printer.
type reportPrinter interface {
	XReport(ctx context.Context) (device.Report, error)
	ZReport(ctx context.Context) (device.Report, error)
	Cash(ctx context.Context, kind device.CashKind, amount int64) (device.CashState, error)
}

// reportBody is the JSON of an X or Z report: turnover per VAT group A…H
// in minor units.
type reportBody struct {
	PrinterID string           `json:"printer_id"`
	Kind      string           `json:"kind"`
	Number    int              `json:"number"`
	Totals    map[string]int64 `json:"totals"`
	Storno    map[string]int64 `json:"storno"`
}

func groups(v [8]int64) map[string]int64 {
	m := map[string]int64{}
	for i, x := range v {
		if x != 0 {
			m[string(rune('A'+i))] = x
		}
	}
	return m
}

func printerFor(d Deps, r *http.Request) (reportPrinter, error) {
	p, ok := d.Printers[r.PathValue("id")]
	if !ok {
		return nil, notFound("printer " + r.PathValue("id"))
	}
	return p, nil
}

// handlePrinterReport prints an X (read-only) or Z (closes the fiscal
// day) report. It is idempotent: a retried request with the same
// Idempotency-Key never prints a second Z report.
func handlePrinterReport(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := printerFor(d, r)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		kind := r.PathValue("kind")
		var rep device.Report
		switch kind {
		case "x":
			rep, err = p.XReport(r.Context())
		case "z": // minutes on a full day: a progress line every 10 s
			stop := observe.Progress(r.Context(), d.Log, "z report", 10*time.Second)
			rep, err = p.ZReport(r.Context())
			stop()
		default:
			writeError(w, r, d.Log, validationError("kind", `must be "x" or "z"`))
			return
		}
		if err != nil {
			writeError(w, r, d.Log, printerError(err))
			return
		}
		writeJSON(w, http.StatusCreated, reportBody{PrinterID: r.PathValue("id"), Kind: kind, Number: rep.Number,
			Totals: groups(rep.Totals), Storno: groups(rep.Storno)})
	})
}

// handlePrinterCash records cash put into or taken out of the drawer.
func handlePrinterCash(d Deps) http.Handler {
	type request struct {
		Type   string `json:"type"`
		Amount int64  `json:"amount"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		kind := device.CashIn
		switch req.Type {
		case "in":
		case "out":
			kind = device.CashOut
		default:
			writeError(w, r, d.Log, validationError("type", `must be "in" or "out"`))
			return
		}
		if req.Amount <= 0 || req.Amount > 99_999_999_99 {
			writeError(w, r, d.Log, validationError("amount", "must be a positive amount in minor units"))
			return
		}
		p, err := printerFor(d, r)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		st, err := p.Cash(r.Context(), kind, req.Amount)
		if err != nil {
			writeError(w, r, d.Log, printerError(err))
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{
			"printer_id": r.PathValue("id"), "type": req.Type, "amount": req.Amount,
			"drawer": map[string]int64{"sum": st.Sum, "in": st.In, "out": st.Out},
		})
	})
}

// printerError turns a printer's refusal into a client error that says
// what the printer reported; transport trouble is 503.
func printerError(err error) error {
	var pe *device.PrinterError
	switch {
	case errors.As(err, &pe):
		return &Error{Code: CodePrinterRejected, Message: "printer refused: " + pe.Error(),
			Details: map[string]any{"printer_code": pe.Code}}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &Error{Code: CodeDeviceUnavailable, Message: "printer did not answer in time"}
	default:
		return &Error{Code: CodeDeviceUnavailable, Message: "printer unavailable: " + err.Error()}
	}
}
