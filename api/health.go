package api

import (
	"context"
	"net/http"
	"time"
)

// handleHealth answers 200 when the store takes a write lock within a
// second, 503 otherwise, with component states in the body. It needs no
// key: monitoring on the box polls it.
func handleHealth(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		body := map[string]any{"status": "ok", "version": d.Version}
		status := http.StatusOK
		if err := d.Store.Ping(ctx); err != nil {
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
		writeJSON(w, status, body)
	})
}
