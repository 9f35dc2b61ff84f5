package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"time"

	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/webhook"
)

// Operational events and the circuit breaker (issue 18). They are written
// in the relay's own acknowledging transaction, through EnqueueTx like
// any event, so a head office watches its receivers through the same
// outbox, with the same guarantees. The lane keeps the endpoint's breaker
// state in memory (failingSince, alerted) and the store is written only
// when it changes: never on the common path of a success after a success.

// isOperational reports whether t is an operational event type.
func isOperational(t string) bool {
	return t == webhook.EventDeliveryExhausted || t == webhook.EventEndpointDisabled || t == webhook.EventEndpointRecovered
}

// emit enqueues an operational event about endpoint, to every subscriber
// but that endpoint, and wakes the loop once the batch commits.
func (l *loop) emit(ctx context.Context, tx *sql.Tx, typ, endpoint string, data any, now time.Time) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	if _, err := EnqueueTx(ctx, tx, Event{Type: typ, Data: b, Time: now, NotTo: endpoint}); err != nil {
		return err
	}
	if typ != webhook.EventEndpointRecovered {
		if err := l.r.endpoints.AlertedTx(ctx, tx, endpoint); err != nil {
			return err
		}
	}
	l.r.Notify()
	return nil
}

// exhausted sends delivery.exhausted for a delivery that went dead,
// unless it carried an operational event itself: two failing endpoints
// would otherwise report each other's reports without end.
func (l *loop) exhausted(ctx context.Context, tx *sql.Tx, res result, errMsg string) error {
	if isOperational(res.eventType) {
		return nil
	}
	ln := l.lanes[res.endpoint]
	if ln != nil {
		ln.alerted = true
	}
	return l.emit(ctx, tx, webhook.EventDeliveryExhausted, res.endpoint, map[string]any{
		"delivery_id": "dlv_" + itoa(res.delivery), "endpoint_id": res.endpoint,
		"event_id": res.eventID, "event_type": res.eventType,
		"attempts": res.n, "last_status": res.Status, "last_error": errMsg,
	}, l.r.opts.Now())
}

// failed records a spent failed attempt for the breaker, and disables the
// endpoint once its failures have lasted DisableAfter.
func (l *loop) failed(ctx context.Context, tx *sql.Tx, endpoint string, now time.Time) error {
	ln := l.lanes[endpoint]
	if ln == nil || ln.stopped.Load() {
		return nil
	}
	if ln.failingSince.IsZero() {
		since, err := l.r.endpoints.FailingTx(ctx, tx, endpoint, now)
		if err != nil {
			return err
		}
		ln.failingSince = since
	}
	if d := l.r.opts.DisableAfter; d > 0 && now.Sub(ln.failingSince) >= d {
		return l.disable(ctx, tx, endpoint, "failing", now)
	}
	return nil
}

// disable turns an endpoint off (410 Gone, or the breaker) and sends
// endpoint.disabled. The lane stops at the next reload.
func (l *loop) disable(ctx context.Context, tx *sql.Tx, endpoint, reason string, now time.Time) error {
	ln := l.lanes[endpoint]
	if ln != nil && ln.disabling {
		return nil // already, earlier in this batch
	}
	if err := l.r.endpoints.DisableTx(ctx, tx, endpoint, reason); err != nil {
		return err
	}
	data := map[string]any{"endpoint_id": endpoint, "reason": reason}
	if ln != nil {
		ln.disabling, ln.alerted = true, true
		data["url"] = ln.target.Load().URL
		if !ln.failingSince.IsZero() {
			data["failing_since"] = ln.failingSince.UTC().Truncate(time.Millisecond)
		}
	}
	l.r.log.Warn().Str(logkey.EndpointID, endpoint).Str("reason", reason).Msg("webhook endpoint disabled")
	return l.emit(ctx, tx, webhook.EventEndpointDisabled, endpoint, data, now)
}

// succeeded ends an endpoint's run of failures; after an operational
// event about it, it sends endpoint.recovered.
func (l *loop) succeeded(ctx context.Context, tx *sql.Tx, res result) error {
	ln := l.lanes[res.endpoint]
	if ln == nil || ln.failingSince.IsZero() && !ln.alerted {
		return nil
	}
	since := ln.failingSince
	alerted, err := l.r.endpoints.SucceededTx(ctx, tx, res.endpoint)
	if err != nil {
		return err
	}
	ln.failingSince, ln.alerted = time.Time{}, false
	if !alerted {
		return nil
	}
	data := map[string]any{"endpoint_id": res.endpoint, "url": ln.target.Load().URL}
	if !since.IsZero() {
		data["failing_since"] = since.UTC().Truncate(time.Millisecond)
	}
	l.r.log.Info().Str(logkey.EndpointID, res.endpoint).Msg("webhook endpoint recovered after an operational event")
	return l.emit(ctx, tx, webhook.EventEndpointRecovered, res.endpoint, data, l.r.opts.Now())
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
