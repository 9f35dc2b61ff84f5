package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// MaxData is the largest event data accepted.
const MaxData = 256 << 10

// Errors of EnqueueTx.
var (
	ErrBadType      = errors.New("outbox: event type must be 1 to 64 characters of a-z, 0-9, '.' and '_'")
	ErrBadData      = errors.New("outbox: event data must be valid JSON")
	ErrTooLarge     = fmt.Errorf("outbox: event data is larger than %d bytes", MaxData)
	ErrNotFound     = errors.New("outbox: not found")
	ErrNotRetryable = errors.New("outbox: delivery is already delivered")
)

// Event is something that happened, to be delivered to every endpoint
// subscribed to its type.
type Event struct {
	// Type is one of DESIGN §6's event types, e.g. "invoice.created".
	Type string
	// Data is the resource, as JSON. It is stored and sent byte for byte.
	// Empty means {}.
	Data json.RawMessage
	// Time is when it happened. Zero means now.
	Time time.Time
	// Endpoint, when set, delivers to that endpoint only, whatever its
	// filter (test events).
	Endpoint string
	// NotTo, when set, leaves that endpoint out (an operational event is
	// never sent to the endpoint it is about).
	NotTo string
}

// EnqueueTx writes e and one pending delivery per subscribed active
// endpoint inside the caller's transaction, and returns the event's
// entry_id. Nothing is sent before the transaction commits; call
// Relay.Notify after the commit to send at once rather than at the
// relay's next poll.
func EnqueueTx(ctx context.Context, tx *sql.Tx, e Event) (string, error) {
	if !validType(e.Type) {
		return "", ErrBadType
	}
	data := []byte(e.Data)
	if len(data) == 0 {
		data = []byte("{}")
	}
	if len(data) > MaxData {
		return "", ErrTooLarge
	}
	if !json.Valid(data) {
		return "", ErrBadData
	}
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	id := webhook.NewEventID(at)
	ms := store.Millis(at)
	res, err := tx.ExecContext(ctx, "INSERT INTO outbox_events (id, type, data, created_at) VALUES (?, ?, ?, ?)",
		id, e.Type, data, ms)
	if err != nil {
		return "", fmt.Errorf("insert event: %w", err)
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return "", fmt.Errorf("insert event: %w", err)
	}
	eps := []string{e.Endpoint}
	if e.Endpoint == "" {
		if eps, err = webhook.SubscribersTx(ctx, tx, e.Type); err != nil {
			return "", err
		}
	}
	t := tally{}
	for _, ep := range eps {
		if ep == e.NotTo {
			continue
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO outbox_deliveries (event_seq, endpoint_id, next_attempt_at, created_at)
			VALUES (?, ?, ?, ?)`, seq, ep, ms, ms)
		if err != nil {
			return "", fmt.Errorf("insert delivery to %s: %w", ep, err)
		}
		t.add(ep, 1, 0)
	}
	if err := t.flush(ctx, tx); err != nil {
		return "", err
	}
	return id, nil
}

func validType(t string) bool {
	if t == "" || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}
