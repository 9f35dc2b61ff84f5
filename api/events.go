package api

import (
	"net/http"

	"github.com/posgate/posgate/outbox"
)

// handleEventList serves the event log, oldest first: ?type= filters by
// event type, ?since= (RFC 3339) by time, ?cursor= pages.
func handleEventList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Outbox == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		q := r.URL.Query()
		since, err := timeParam("since", q.Get("since"))
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		cursor, limit, err := pageParams(r, 1000)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		evs, next, err := d.Outbox.Events(r.Context(), outbox.EventFilter{Type: q.Get("type"), Since: since, Cursor: cursor, Limit: limit})
		if err != nil {
			writeError(w, r, d.Log, outboxError(err))
			return
		}
		writeList(w, evs, next)
	})
}
