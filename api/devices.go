package api

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/posgate/posgate/device"
)

// printerProbe bounds how long GET /v1/devices waits for one printer.
const printerProbe = 2 * time.Second

// deviceView is a device as GET /v1/devices shows it.
type deviceView struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"` // terminal or printer
	Protocol  string `json:"protocol,omitempty"`
	Port      string `json:"port,omitempty"`
	State     string `json:"state"` // online, offline, busy or error
	Model     string `json:"model,omitempty"`
	Serial    string `json:"serial,omitempty"`
	Firmware  string `json:"firmware,omitempty"`
	LastError string `json:"last_error,omitempty"`
	PaymentID string `json:"payment_id,omitempty"` // the payment a busy terminal runs
}

// ReceiptPrinter is what GET /v1/devices shows of a receipt printer
// (ESC/POS): its line, and what its status poll last saw, without a round
// trip to the printer.
type ReceiptPrinter interface {
	Link() *device.Link
	// Condition is what keeps the printer from printing as last seen
	// ("paper out", "cover open", …); "" when it was ready.
	Condition() string
}

// handleDeviceList lists terminals (from their session loops, without
// touching the line), fiscal printers (asked for their identity and
// status, each bounded by printerProbe) and receipt printers (from their
// status polls).
func handleDeviceList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := terminalViews(d)
		for _, id := range sortedKeys(d.Printers) {
			out = append(out, printerView(r.Context(), id, d.Printers[id]))
		}
		for _, id := range sortedKeys(d.ReceiptPrinters) {
			out = append(out, receiptPrinterView(id, d.ReceiptPrinters[id]))
		}
		writeList(w, out, "")
	})
}

func sortedKeys[T any](m map[string]T) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// receiptPrinterView is a receipt printer's state: offline while its line
// is down, "error" with the condition while it cannot print.
func receiptPrinterView(id string, p ReceiptPrinter) deviceView {
	v := deviceView{ID: id, Kind: "printer", Protocol: "escpos", State: "online"}
	if p == nil {
		return v
	}
	if online, err := p.Link().State(); !online {
		v.State = "offline"
		if err != nil {
			v.LastError = err.Error()
		}
		return v
	}
	if c := p.Condition(); c != "" {
		v.State, v.LastError = "error", c
	}
	return v
}

func handleDeviceGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		for _, v := range terminalViews(d) {
			if v.ID == id {
				writeJSON(w, http.StatusOK, v)
				return
			}
		}
		if p, ok := d.Printers[id]; ok {
			writeJSON(w, http.StatusOK, printerView(r.Context(), id, p))
			return
		}
		if p, ok := d.ReceiptPrinters[id]; ok {
			writeJSON(w, http.StatusOK, receiptPrinterView(id, p))
			return
		}
		writeError(w, r, d.Log, notFound("device"))
	})
}

func terminalViews(d Deps) []deviceView {
	if d.Payments == nil {
		return nil
	}
	var out []deviceView
	for _, t := range d.Payments.Terminals() {
		out = append(out, deviceView{ID: t.ID, Kind: "terminal", Protocol: t.Protocol, Port: t.Port, State: t.State,
			Firmware: t.Software, LastError: t.LastError, PaymentID: t.PaymentID})
	}
	return out
}

func printerView(ctx context.Context, id string, p device.Printer) deviceView {
	v := deviceView{ID: id, Kind: "printer", State: "online"}
	ctx, cancel := context.WithTimeout(ctx, printerProbe)
	defer cancel()
	info, err := p.Info(ctx)
	if err != nil {
		v.State, v.LastError = "error", err.Error()
		if errors.Is(err, device.ErrOffline) {
			v.State = "offline"
		} else if errors.Is(err, context.DeadlineExceeded) {
			v.State = "busy"
		}
		return v
	}
	v.Model, v.Serial, v.Firmware = info.Model, info.Serial, info.Firmware
	st, err := p.Status(ctx)
	if err != nil {
		v.State, v.LastError = "error", err.Error()
		return v
	}
	problems := printerFaults(st)
	if len(problems) > 0 {
		v.State, v.LastError = "error", strings.Join(problems, ", ")
	}
	return v
}
