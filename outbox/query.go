package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// Delivery states as the API names them.
const (
	StatePending   = "pending"
	StateDelivered = "delivered"
	StateDead      = "dead"
)

var stateNames = map[int]string{statePending: StatePending, stateDelivered: StateDelivered, stateDead: StateDead}

// EventRecord is an event in the log.
type EventRecord struct {
	ID        string          `json:"id"` // entry_id
	Type      string          `json:"type"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// EventFilter selects events. Zero fields select everything.
type EventFilter struct {
	Type   string
	Since  time.Time
	Cursor string // from a previous page
	Limit  int    // default 100, at most 1000
}

// ErrBadCursor is returned for a cursor this package did not make.
var ErrBadCursor = errors.New("outbox: malformed cursor")

// Events returns the event log oldest first, and the cursor of the next
// page ("" at the end).
func (r *Relay) Events(ctx context.Context, f EventFilter) ([]EventRecord, string, error) {
	limit := pageLimit(f.Limit)
	after, err := parseCursor(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	q := "SELECT seq, id, type, data, created_at FROM outbox_events WHERE seq > ? AND created_at >= ?"
	args := []any{after, store.Millis(f.Since)}
	if f.Since.IsZero() {
		args[1] = int64(-1 << 62)
	}
	if f.Type != "" {
		q += " AND type = ?"
		args = append(args, f.Type)
	}
	q += " ORDER BY seq LIMIT ?"
	args = append(args, limit+1)
	rows, err := r.db.Read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var (
		out  = []EventRecord{}
		seqs []int64
	)
	for rows.Next() {
		var (
			e       EventRecord
			seq     int64
			created int64
			data    []byte
		)
		if err := rows.Scan(&seq, &e.ID, &e.Type, &data, &created); err != nil {
			return nil, "", fmt.Errorf("list events: %w", err)
		}
		e.Data, e.CreatedAt = data, store.FromMillis(created)
		out, seqs = append(out, e), append(seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(seqs[limit-1], 10)
	}
	return out, next, nil
}

// Delivery is one event's delivery to one endpoint, with its attempts.
type Delivery struct {
	ID            string     `json:"id"`
	EventID       string     `json:"event_id"`
	EventType     string     `json:"event_type"`
	EndpointID    string     `json:"endpoint_id"`
	State         string     `json:"state"`
	AttemptCount  int        `json:"attempt_count"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastStatus    int        `json:"last_status"`
	LastError     string     `json:"last_error,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	Attempts      []Attempt  `json:"attempts"`

	// delivering is the attempt recorded on the row, appended last.
	delivering *Attempt
}

// Attempt is one recorded attempt.
type Attempt struct {
	N          int       `json:"n"`
	Kind       string    `json:"kind"`  // scheduled, manual or probe
	Spent      bool      `json:"spent"` // false: did not count against max_attempts
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	StatusCode int       `json:"status_code"` // 0: no response
	ErrorClass string    `json:"error_class,omitempty"`
	Error      string    `json:"error,omitempty"`
	Response   string    `json:"response,omitempty"` // at most 4 KiB
}

// DeliveryFilter selects an endpoint's deliveries.
type DeliveryFilter struct {
	EndpointID string
	State      string // "" or one of the State constants
	Cursor     string
	Limit      int // default 100, at most 1000
}

// ErrBadState is returned for an unknown state filter.
var ErrBadState = errors.New("outbox: state must be pending, delivered or dead")

const deliveryCols = `d.id, e.id, e.type, d.endpoint_id, d.state, d.attempts, d.next_attempt_at, d.last_status,
	d.last_error, d.created_at, d.finished_at, d.last_attempt_at, d.last_duration_ms, d.last_response`

// Deliveries returns an endpoint's deliveries, newest first, each with
// its attempts, and the next page's cursor.
func (r *Relay) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, string, error) {
	limit := pageLimit(f.Limit)
	before, err := parseCursor(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	if before == 0 {
		before = 1<<63 - 1
	}
	q := "SELECT " + deliveryCols + " FROM outbox_deliveries d JOIN outbox_events e ON e.seq = d.event_seq WHERE d.endpoint_id = ? AND d.id < ?"
	args := []any{f.EndpointID, before}
	if f.State != "" {
		st := -1
		for k, v := range stateNames {
			if v == f.State {
				st = k
			}
		}
		if st < 0 {
			return nil, "", ErrBadState
		}
		q += " AND d.state = ?"
		args = append(args, st)
	}
	q += " ORDER BY d.id DESC LIMIT ?"
	args = append(args, limit+1)
	ds, err := r.queryDeliveries(ctx, q, args...)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		next = strings.TrimPrefix(ds[limit-1].ID, "dlv_")
	}
	return ds, next, r.withAttempts(ctx, ds)
}

// Delivery returns one delivery with its attempts. Returns ErrNotFound.
func (r *Relay) Delivery(ctx context.Context, id string) (Delivery, error) {
	n, err := parseDeliveryID(id)
	if err != nil {
		return Delivery{}, err
	}
	ds, err := r.queryDeliveries(ctx, "SELECT "+deliveryCols+" FROM outbox_deliveries d JOIN outbox_events e ON e.seq = d.event_seq WHERE d.id = ?", n)
	if err != nil {
		return Delivery{}, err
	}
	if len(ds) == 0 {
		return Delivery{}, ErrNotFound
	}
	return ds[0], r.withAttempts(ctx, ds)
}

func (r *Relay) queryDeliveries(ctx context.Context, q string, args ...any) ([]Delivery, error) {
	rows, err := r.db.Read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	ds := []Delivery{}
	for rows.Next() {
		var (
			d                Delivery
			id               int64
			state            int
			next, created    int64
			finished, lastAt sql.NullInt64
			lastDur          int64
			lastResp         []byte
		)
		if err := rows.Scan(&id, &d.EventID, &d.EventType, &d.EndpointID, &state, &d.AttemptCount, &next,
			&d.LastStatus, &d.LastError, &created, &finished, &lastAt, &lastDur, &lastResp); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.ID, d.State, d.CreatedAt = "dlv_"+strconv.FormatInt(id, 10), stateNames[state], store.FromMillis(created)
		d.Attempts = []Attempt{}
		if state == statePending {
			t := store.FromMillis(next)
			d.NextAttemptAt = &t
		}
		if finished.Valid {
			t := store.FromMillis(finished.Int64)
			d.FinishedAt = &t
		}
		if lastAt.Valid {
			d.delivering = &Attempt{N: d.AttemptCount, Kind: KindScheduled, Spent: true, StartedAt: store.FromMillis(lastAt.Int64),
				DurationMS: lastDur, StatusCode: d.LastStatus, Response: strings.ToValidUTF8(string(lastResp), "\uFFFD")}
		}
		ds = append(ds, d)
	}
	return ds, rows.Err()
}

// withAttempts fills in each delivery's attempts with one query.
func (r *Relay) withAttempts(ctx context.Context, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	idx := map[int64]int{}
	args := make([]any, len(ds))
	for i, d := range ds {
		n, _ := parseDeliveryID(d.ID)
		idx[n], args[i] = i, n
	}
	rows, err := r.db.Read.QueryContext(ctx, `SELECT delivery_id, n, kind, spent, started_at, duration_ms, status_code,
		error_class, error, response FROM outbox_attempts WHERE delivery_id IN (?`+strings.Repeat(",?", len(ds)-1)+`) ORDER BY id`, args...)
	if err != nil {
		return fmt.Errorf("list attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a       Attempt
			did     int64
			started int64
			resp    []byte
		)
		if err := rows.Scan(&did, &a.N, &a.Kind, &a.Spent, &started, &a.DurationMS, &a.StatusCode, &a.ErrorClass, &a.Error, &resp); err != nil {
			return fmt.Errorf("list attempts: %w", err)
		}
		a.StartedAt, a.Response = store.FromMillis(started), strings.ToValidUTF8(string(resp), "\uFFFD")
		i := idx[did]
		ds[i].Attempts = append(ds[i].Attempts, a)
	}
	for i := range ds {
		if ds[i].delivering != nil {
			ds[i].Attempts = append(ds[i].Attempts, *ds[i].delivering)
		}
	}
	return rows.Err()
}

// Counts are an endpoint's pending and dead deliveries.
type Counts struct {
	Pending int64 `json:"pending"`
	Dead    int64 `json:"dead"`
}

// Counts returns every endpoint's counters, read from outbox_counters,
// which triggers keep in step with each state change: no COUNT(*) over
// the backlog.
func (r *Relay) Counts(ctx context.Context) (map[string]Counts, error) {
	rows, err := r.db.Read.QueryContext(ctx, "SELECT endpoint_id, pending, dead FROM outbox_counters")
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	defer rows.Close()
	out := map[string]Counts{}
	for rows.Next() {
		var (
			id string
			c  Counts
		)
		if err := rows.Scan(&id, &c.Pending, &c.Dead); err != nil {
			return nil, fmt.Errorf("read counters: %w", err)
		}
		out[id] = c
	}
	return out, rows.Err()
}

// Recover re-queues an endpoint's dead deliveries of events since since,
// with a fresh attempt budget, and returns how many. Their attempt
// numbers go on from where they were.
func (r *Relay) Recover(ctx context.Context, endpointID string, since time.Time) (int64, error) {
	now := store.Millis(r.opts.Now())
	var n int64
	err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		// A fresh budget without rewinding the attempt number: the
		// budget is counted from budget_base (receivers see attempt
		// numbers grow, never start at 1 again).
		res, err := tx.ExecContext(ctx, `UPDATE outbox_deliveries SET state = 0, budget_base = attempts, next_attempt_at = ?,
			finished_at = NULL WHERE endpoint_id = ? AND state = 3 AND created_at >= ?`, now, endpointID, store.Millis(since))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		t := tally{}
		t.add(endpointID, n, -n)
		return t.flush(ctx, tx)
	})
	if err != nil {
		return 0, fmt.Errorf("recover deliveries of %s: %w", endpointID, err)
	}
	if n > 0 {
		r.Notify()
	}
	return n, nil
}

// Retry makes one immediate manual attempt of a pending or dead delivery
// and returns the delivery afterwards. Success delivers it; a failure
// leaves it as it was (a dead delivery stays dead, a pending one keeps its
// schedule), and a manual attempt never spends the automatic budget.
// Returns ErrNotFound, or ErrNotRetryable for a delivered one.
func (r *Relay) Retry(ctx context.Context, id string) (Delivery, error) {
	n, err := parseDeliveryID(id)
	if err != nil {
		return Delivery{}, err
	}
	var (
		j       = job{delivery: n, kind: KindManual}
		state   int
		created int64
		data    []byte
	)
	// The attempt number is taken before the request goes out, in its
	// own transaction, so two manual retries never carry the same number;
	// budget_base moves with it, so a manual attempt spends nothing of
	// the automatic budget.
	err = r.db.InTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, "SELECT state FROM outbox_deliveries WHERE id = ?", n).Scan(&state)
		if err != nil || state == stateDelivered {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE outbox_deliveries SET attempts = attempts + 1, budget_base = budget_base + 1 WHERE id = ?", n); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT d.endpoint_id, d.attempts, d.budget_base, d.last_error, e.id, e.type, e.data, e.created_at
			FROM outbox_deliveries d JOIN outbox_events e ON e.seq = d.event_seq WHERE d.id = ?`, n).
			Scan(&j.endpoint, &j.n, &j.base, &j.lastError, &j.eventID, &j.eventType, &data, &created)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, ErrNotFound
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("read delivery %s: %w", id, err)
	}
	if state == stateDelivered {
		return Delivery{}, ErrNotRetryable
	}
	j.created = store.FromMillis(created)
	r.body(&j, data)
	t, err := r.endpoints.Target(ctx, j.endpoint)
	if err != nil {
		if errors.Is(err, webhook.ErrNotFound) {
			return Delivery{}, ErrNotFound
		}
		return Delivery{}, err
	}
	res := r.send(t, j, func(t webhook.Target, m webhook.Message) webhook.Result { return r.sender.Send(ctx, t, m) })
	now := r.opts.Now()
	err = r.db.InTx(context.WithoutCancel(ctx), func(tx *sql.Tx) error {
		if res.OK() {
			// Read the state again under the write lock: the relay may
			// have delivered it meanwhile. The counters follow the row.
			var was int
			err := tx.QueryRowContext(ctx, "SELECT state FROM outbox_deliveries WHERE id = ?", n).Scan(&was)
			if errors.Is(err, sql.ErrNoRows) || err == nil && was == stateDelivered {
				return nil // deleted or delivered meanwhile: nothing to record
			}
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE outbox_deliveries SET state = 2, last_status = ?, last_error = '',
				finished_at = ? WHERE id = ?`, res.Status, store.Millis(now), n); err != nil {
				return err
			}
			t := tally{}
			if was == stateDead {
				t.add(j.endpoint, 0, -1)
			} else {
				t.add(j.endpoint, -1, 0)
			}
			if err := t.flush(ctx, tx); err != nil {
				return err
			}
		} else if _, err := tx.ExecContext(ctx, "UPDATE outbox_deliveries SET last_status = ?, last_error = ? WHERE id = ? AND state IN (0, 3)",
			res.Status, truncate(res.Err, 500), n); err != nil {
			return err
		}
		var snippet any
		if len(res.Snippet) > 0 {
			snippet = res.Snippet
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO outbox_attempts
			(delivery_id, n, kind, spent, started_at, duration_ms, status_code, error_class, error, response)
			VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?)`, n, j.n, KindManual, store.Millis(res.started),
			res.Duration.Milliseconds(), res.Status, res.Class, truncate(res.Err, 500), snippet)
		return err
	})
	if err != nil {
		return Delivery{}, fmt.Errorf("record manual attempt of %s: %w", id, err)
	}
	return r.Delivery(ctx, id)
}

// SendTest enqueues a webhook.test event for one endpoint and returns it.
func (r *Relay) SendTest(ctx context.Context, endpointID string) (EventRecord, error) {
	if _, err := r.endpoints.Get(ctx, endpointID); err != nil {
		if errors.Is(err, webhook.ErrNotFound) {
			return EventRecord{}, ErrNotFound
		}
		return EventRecord{}, err
	}
	now := r.opts.Now().UTC().Truncate(time.Millisecond)
	data, _ := json.Marshal(map[string]string{"endpoint_id": endpointID, "message": "test event from posgate"})
	id, err := r.Enqueue(ctx, Event{Type: "webhook.test", Data: data, Time: now, Endpoint: endpointID})
	if err != nil {
		return EventRecord{}, err
	}
	return EventRecord{ID: id, Type: "webhook.test", CreatedAt: now, Data: data}, nil
}

func pageLimit(n int) int {
	if n <= 0 {
		return 100
	}
	return min(n, 1000)
}

func parseCursor(c string) (int64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(c, 10, 64)
	if err != nil || n <= 0 {
		return 0, ErrBadCursor
	}
	return n, nil
}

func parseDeliveryID(id string) (int64, error) {
	s, ok := strings.CutPrefix(id, "dlv_")
	n, err := strconv.ParseInt(s, 10, 64)
	if !ok || err != nil || n <= 0 {
		return 0, ErrNotFound
	}
	return n, nil
}
