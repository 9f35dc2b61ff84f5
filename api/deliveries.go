package api

import (
	"errors"
	"net/http"

	"github.com/posgate/posgate/outbox"
)

func outboxError(err error) error {
	switch {
	case errors.Is(err, outbox.ErrBadCursor):
		return validationError("cursor", "is not a cursor from this list")
	case errors.Is(err, outbox.ErrBadState):
		return validationError("state", `must be "pending", "delivered" or "dead"`)
	case errors.Is(err, outbox.ErrNotRetryable):
		return &Error{Code: CodeConflict, Message: "the delivery was already delivered"}
	case errors.Is(err, outbox.ErrNotFound):
		return notFound("delivery")
	}
	return err
}

// handleDeliveryList lists an endpoint's deliveries, newest first, each
// with its attempts (status code, duration, error class, response snippet).
func handleDeliveryList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Webhooks == nil || d.Outbox == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		id := r.PathValue("id")
		if _, err := d.Webhooks.Get(r.Context(), id); err != nil {
			writeError(w, r, d.Log, webhookError(err))
			return
		}
		cursor, limit, err := pageParams(r, 1000)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		ds, next, err := d.Outbox.Deliveries(r.Context(), outbox.DeliveryFilter{
			EndpointID: id, State: r.URL.Query().Get("state"), Cursor: cursor, Limit: limit,
		})
		if err != nil {
			writeError(w, r, d.Log, outboxError(err))
			return
		}
		writeList(w, ds, next)
	})
}

func handleDeliveryGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Outbox == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		dl, err := d.Outbox.Delivery(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Log, outboxError(err))
			return
		}
		writeJSON(w, http.StatusOK, dl)
	})
}

// handleDeliveryRetry makes one manual attempt now and answers with the
// delivery afterwards; a failed manual attempt is still a 200 (the
// attempt is in the body), since the request itself did what it said.
func handleDeliveryRetry(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Outbox == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		dl, err := d.Outbox.Retry(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Log, outboxError(err))
			return
		}
		writeJSON(w, http.StatusOK, dl)
	})
}

// handleWebhookRecover re-queues the endpoint's dead deliveries of events
// since a time, with a fresh attempt budget.
func handleWebhookRecover(d Deps) http.Handler {
	type request struct {
		Since string `json:"since"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Webhooks == nil || d.Outbox == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		var req request
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		if req.Since == "" {
			writeError(w, r, d.Log, validationError("since", "is required"))
			return
		}
		since, err := timeParam("since", req.Since)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		id := r.PathValue("id")
		if _, err := d.Webhooks.Get(r.Context(), id); err != nil {
			writeError(w, r, d.Log, webhookError(err))
			return
		}
		n, err := d.Outbox.Recover(r.Context(), id, since)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		d.Log.Info().Str("endpoint_id", id).Int64("requeued", n).Msg("dead deliveries recovered")
		writeJSON(w, http.StatusOK, map[string]any{"requeued": n})
	})
}
