package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/posgate/posgate/outbox"
)

// pageParams reads cursor and limit.
func pageParams(r *http.Request) (cursor string, limit int, err error) {
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return "", 0, validationError("limit", "must be an integer from 1 to 1000")
		}
	}
	return q.Get("cursor"), limit, nil
}

// timeParam reads an RFC 3339 time; zero when absent.
func timeParam(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, validationError(name, "must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	}
	return t, nil
}

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
		cursor, limit, err := pageParams(r)
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
