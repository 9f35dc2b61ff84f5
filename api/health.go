package api

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/posgate/posgate/device"
)

// healthProbe bounds each check /healthz makes (the store's write probe,
// each printer's status).
const healthProbe = time.Second

// printerHealthTTL is how long a printer's status is reused by /healthz,
// so a monitor polling it does not keep the printer's line busy.
const printerHealthTTL = time.Second

// handleHealth answers 200 when the store takes a real write (a probe row
// committed within a second on a filesystem with room, store.Writable),
// 503 otherwise, with component states in the body. status is "ok",
// "degraded" (a printer reports paper out, cover open or another fault:
// receipts cannot print, payments and invoices still work) or
// "unavailable" (the store is not writable). It needs no key: monitoring
// on the box polls it.
func handleHealth(d Deps) http.Handler {
	printers := &printerHealth{printers: d.Printers}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthProbe)
		defer cancel()
		body := map[string]any{"status": "ok", "version": d.Version}
		status := http.StatusOK
		if err := d.Store.Writable(ctx); err != nil {
			d.Log.Warn().Err(err).Msg("health: store not writable")
			body["status"] = "unavailable"
			body["store"] = "not writable"
			status = http.StatusServiceUnavailable
		} else {
			body["store"] = "ok"
		}
		if d.Health != nil {
			for k, v := range d.Health(ctx) {
				body[k] = v
			}
		}
		faults := printers.faults(ctx)
		if len(faults) > 0 {
			devices, _ := body["devices"].(map[string]any)
			if devices == nil {
				devices = map[string]any{}
				body["devices"] = devices
			}
			for id, f := range faults {
				devices[id] = map[string]any{"state": "degraded", "last_error": f}
			}
			if body["status"] == "ok" {
				body["status"] = "degraded"
			}
		}
		writeJSON(w, status, body)
	})
}

// printerHealth asks each printer for its status bytes, at most once per
// printerHealthTTL, and keeps the faults they report.
type printerHealth struct {
	printers map[string]device.Printer
	mu       sync.Mutex
	at       time.Time
	last     map[string]string // printer id -> its faults, "paper out, cover open"
}

// faults returns the printers that report a fault. A printer that does
// not answer in time keeps its last answer; one that is offline shows as
// such in the devices' link states.
func (h *printerHealth) faults(ctx context.Context) map[string]string {
	if len(h.printers) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.at.IsZero() && time.Since(h.at) < printerHealthTTL {
		return h.last
	}
	ids := make([]string, 0, len(h.printers))
	for id := range h.printers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	next := map[string]string{}
	for _, id := range ids {
		st, err := h.printers[id].Status(ctx)
		if err != nil {
			if f, ok := h.last[id]; ok && ctx.Err() != nil {
				next[id] = f
			}
			continue
		}
		if f := printerFaults(st); len(f) > 0 {
			next[id] = strings.Join(f, ", ")
		}
	}
	h.at, h.last = time.Now(), next
	return next
}

// printerFaults names what a printer's status bytes report as wrong; GET
// /v1/devices shows the same list.
func printerFaults(st device.PrinterStatus) []string {
	var problems []string
	for _, f := range []struct {
		on   bool
		what string
	}{{st.PaperOut, "paper out"}, {st.CoverOpen, "cover open"}, {st.MechanismFault, "mechanism fault"},
		{st.FiscalMemoryFull, "fiscal memory full"}, {st.FiscalMemoryError, "fiscal memory error"}, {st.JournalFull, "journal full"}} {
		if f.on {
			problems = append(problems, f.what)
		}
	}
	return problems
}
