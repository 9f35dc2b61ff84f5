package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/observe"
)

// reportPrinter is what the printer routes need from a fiscal printer.
type reportPrinter interface {
	XReport(ctx context.Context) (device.Report, error)
	ZReport(ctx context.Context) (device.Report, error)
	Cash(ctx context.Context, kind device.CashKind, amount int64) (device.CashState, error)
	LastReceipt(ctx context.Context) (device.LastReceipt, error)
}

// reportBody is the JSON of an X or Z report: turnover per VAT group A…H
// in minor units.
type reportBody struct {
	PrinterID string           `json:"printer_id"`
	Kind      string           `json:"kind"`
	Number    int              `json:"number"`
	Totals    map[string]int64 `json:"totals"`
	Storno    map[string]int64 `json:"storno"`
	// Recovered: a retry found the report already printed by an
	// interrupted request; the printer gave its number, not its totals.
	Recovered bool `json:"recovered,omitempty"`
}

// opOf is the printer operation a request asks for: its API key and
// Idempotency-Key (both routes are idempotent).
func opOf(r *http.Request) fiscal.Op {
	return fiscal.Op{Scope: keyFrom(r.Context()).ID, Key: IdempotencyKey(r.Context())}
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
		if kind != "x" && kind != "z" {
			writeError(w, r, d.Log, validationError("kind", `must be "x" or "z"`))
			return
		}
		var rep device.Report
		recovered := false
		if kind == "z" { // minutes on a full day: a progress line every 10 s
			stop := observe.Progress(r.Context(), d.Log, "z report", 10*time.Second)
			defer stop()
		}
		if d.PrinterOps != nil {
			var res fiscal.OpResult
			res, err = d.PrinterOps.Report(r.Context(), p, r.PathValue("id"), kind, opOf(r))
			if err == nil {
				rep, recovered = *res.Report, res.Recovered
			}
		} else if kind == "x" {
			rep, err = p.XReport(r.Context())
		} else {
			rep, err = p.ZReport(r.Context())
		}
		if err != nil {
			writeError(w, r, d.Log, printerError(err))
			return
		}
		writeJSON(w, http.StatusCreated, reportBody{PrinterID: r.PathValue("id"), Kind: kind, Number: rep.Number,
			Totals: groups(rep.Totals), Storno: groups(rep.Storno), Recovered: recovered})
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
		var st device.CashState
		if d.PrinterOps != nil {
			var res fiscal.OpResult
			if res, err = d.PrinterOps.Cash(r.Context(), p, r.PathValue("id"), kind, req.Amount, opOf(r)); err == nil {
				st = *res.Cash
			}
		} else {
			st, err = p.Cash(r.Context(), kind, req.Amount)
		}
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
	case errors.Is(err, fiscal.ErrOpUncertain):
		return &Error{Code: CodePrinterRejected, Message: err.Error() + "; check the printer's journal"}
	case errors.Is(err, fiscal.ErrOpMismatch):
		return &Error{Code: CodeIdempotencyReused, Message: "Idempotency-Key was already used with a different printer operation",
			Details: map[string]any{"field": "Idempotency-Key"}}
	case errors.As(err, &pe):
		return &Error{Code: CodePrinterRejected, Message: "printer refused: " + pe.Error(),
			Details: map[string]any{"printer_code": pe.Code}}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &Error{Code: CodeDeviceUnavailable, Message: "printer did not answer in time"}
	default:
		return &Error{Code: CodeDeviceUnavailable, Message: "printer unavailable: " + err.Error()}
	}
}
