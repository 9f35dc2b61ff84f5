package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// stmts are the relay's hot statements, prepared once on the writer
// connection; Tx.StmtContext reuses them inside each transaction.
type stmts struct {
	claim, lease, minDue, finish, attempt, release *sql.Stmt
}

func prepare(ctx context.Context, db *sql.DB) (*stmts, error) {
	var s stmts
	var errs []error
	p := func(dst **sql.Stmt, q string) {
		st, err := db.PrepareContext(ctx, q)
		errs = append(errs, err)
		*dst = st
	}
	// The claim reads through outbox_deliveries_due: equality on the
	// endpoint and ORDER BY next_attempt_at, so it stops after LIMIT rows
	// whatever the backlog.
	p(&s.claim, `SELECT d.id, d.attempts, d.last_error, e.id, e.type, e.data, e.created_at
		FROM outbox_deliveries d JOIN outbox_events e ON e.seq = d.event_seq
		WHERE d.endpoint_id = ? AND d.state = 0 AND d.next_attempt_at <= ?
		ORDER BY d.next_attempt_at LIMIT ?`)
	p(&s.lease, `UPDATE outbox_deliveries SET next_attempt_at = ? WHERE id = ?`)
	p(&s.minDue, `SELECT MIN(next_attempt_at) FROM outbox_deliveries WHERE endpoint_id = ? AND state = 0`)
	p(&s.finish, `UPDATE outbox_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?,
		last_error = ?, finished_at = ? WHERE id = ? AND state = 0`)
	p(&s.attempt, `INSERT INTO outbox_attempts
		(delivery_id, n, kind, spent, started_at, duration_ms, status_code, error_class, error, response)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	p(&s.release, `UPDATE outbox_deliveries SET next_attempt_at = ? WHERE id = ? AND state = 0`)
	if err := errors.Join(errs...); err != nil {
		s.close()
		return nil, fmt.Errorf("prepare relay statements: %w", err)
	}
	return &s, nil
}

func (s *stmts) close() {
	for _, st := range []*sql.Stmt{s.claim, s.lease, s.minDue, s.finish, s.attempt, s.release} {
		if st != nil {
			st.Close()
		}
	}
}

// claim leases due deliveries for every lane with room and returns them
// by endpoint. It also sets each lane's next look-up time.
func (l *loop) claim(ctx context.Context, tx *sql.Tx, now time.Time) (map[string][]job, error) {
	out := map[string][]job{}
	sel := tx.StmtContext(ctx, l.stmts.claim)
	lease := tx.StmtContext(ctx, l.stmts.lease)
	minDue := tx.StmtContext(ctx, l.stmts.minDue)
	leaseUntil := store.Millis(now.Add(l.r.opts.Lease))
	kind := KindScheduled
	if l.offline {
		kind = KindProbe
	}
	for _, id := range l.order {
		ln := l.lanes[id]
		n := l.room(ln, now)
		if n <= 0 {
			continue
		}
		js, err := claimLane(ctx, sel, ln, id, now, n, kind)
		if err != nil {
			return nil, err
		}
		for _, j := range js {
			if _, err := lease.ExecContext(ctx, leaseUntil, j.delivery); err != nil {
				return nil, fmt.Errorf("lease delivery %d: %w", j.delivery, err)
			}
		}
		out[id] = js
		switch {
		case l.offline && len(js) > 0:
			ln.nextClaim = now.Add(l.r.opts.ProbeInterval)
		case len(js) == n:
			ln.nextClaim = now
		default:
			// Everything due is claimed; sleep until the next row falls due.
			var due sql.NullInt64
			if err := minDue.QueryRowContext(ctx, id).Scan(&due); err != nil {
				return nil, fmt.Errorf("next due for %s: %w", id, err)
			}
			ln.nextClaim = now.Add(l.r.opts.Poll)
			if due.Valid && store.FromMillis(due.Int64).Before(ln.nextClaim) {
				ln.nextClaim = store.FromMillis(due.Int64)
			}
		}
	}
	return out, nil
}

func claimLane(ctx context.Context, sel *sql.Stmt, ln *lane, id string, now time.Time, n int, kind string) ([]job, error) {
	rows, err := sel.QueryContext(ctx, id, store.Millis(now), n)
	if err != nil {
		return nil, fmt.Errorf("claim for %s: %w", id, err)
	}
	defer rows.Close()
	var js []job
	for rows.Next() {
		j := job{endpoint: id, kind: kind, target: ln.target}
		var created int64
		if err := rows.Scan(&j.delivery, &j.n, &j.lastError, &j.eventID, &j.eventType, &j.data, &created); err != nil {
			return nil, fmt.Errorf("claim for %s: %w", id, err)
		}
		j.n++
		j.created = store.FromMillis(created)
		js = append(js, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim for %s: %w", id, err)
	}
	return js, nil
}

// ack records a batch of results: each delivery's new state and its
// attempt row.
func (l *loop) ack(ctx context.Context, tx *sql.Tx, pending []result) error {
	if len(pending) == 0 {
		return nil
	}
	o := l.r.opts
	finish := tx.StmtContext(ctx, l.stmts.finish)
	attempt := tx.StmtContext(ctx, l.stmts.attempt)
	release := tx.StmtContext(ctx, l.stmts.release)
	now := o.Now()
	for _, res := range pending {
		if res.Class == webhook.ClassCanceled {
			// Stopped mid-request: not the endpoint's fault, no attempt.
			if _, err := release.ExecContext(ctx, store.Millis(now), res.delivery); err != nil {
				return fmt.Errorf("release delivery %d: %w", res.delivery, err)
			}
			continue
		}
		var (
			state  = statePending
			n      = res.n
			spent  = true
			next   time.Time
			finAt  any
			errMsg = truncate(res.Err, 500)
			ln     = l.lanes[res.endpoint]
			ev     = l.r.log.Debug()
		)
		switch {
		case res.OK():
			state, finAt = stateDelivered, store.Millis(now)
		case res.Network && l.offline:
			// The store is offline: snooze without spending the attempt.
			n, spent, next = res.n-1, false, now.Add(o.ProbeInterval)
		case res.Status == 410:
			state, finAt = stateDead, store.Millis(now)
			ev = l.r.log.Warn()
			if err := l.r.endpoints.DisableTx(ctx, tx, res.endpoint, "gone"); err != nil {
				return err
			}
			l.r.log.Warn().Str(logkey.EndpointID, res.endpoint).Msg("endpoint answered 410 Gone; disabled")
		case res.n >= o.MaxAttempts:
			state, finAt = stateDead, store.Millis(now)
			ev = l.r.log.Warn()
		default:
			next = now.Add(o.Delay(res.n, res.RetryAfter))
		}
		nextMs := store.Millis(next)
		if next.IsZero() {
			nextMs = store.Millis(now)
		}
		r, err := finish.ExecContext(ctx, state, n, nextMs, res.Status, errMsg, finAt, res.delivery)
		if err != nil {
			return fmt.Errorf("record delivery %d: %w", res.delivery, err)
		}
		if c, _ := r.RowsAffected(); c == 0 {
			// Deleted with its endpoint, or finished by a manual retry.
			continue
		}
		var snippet any
		if len(res.Snippet) > 0 {
			snippet = res.Snippet
		}
		kind := res.kind
		if !spent {
			kind = KindProbe
		}
		_, err = attempt.ExecContext(ctx, res.delivery, res.n, kind, spent, store.Millis(res.started),
			res.Duration.Milliseconds(), res.Status, res.Class, errMsg, snippet)
		if err != nil {
			return fmt.Errorf("record attempt of delivery %d: %w", res.delivery, err)
		}
		if ln != nil && !next.IsZero() && next.Before(ln.nextClaim) {
			ln.nextClaim = next
		}
		if state == stateDead {
			ev = ev.Bool("dead", true)
		}
		if !res.OK() {
			ev.Str(logkey.EndpointID, res.endpoint).Int64(logkey.DeliveryID, res.delivery).Str(logkey.MsgID, res.eventID).
				Int(logkey.Attempt, res.n).Int(logkey.Status, res.Status).Str("error_class", res.Class).Str("error", errMsg).
				Bool("spent", spent).Time("next_attempt_at", next).Msg("webhook delivery failed")
		}
	}
	return nil
}

// release makes claimed deliveries due again at once.
func (l *loop) release(ctx context.Context, tx *sql.Tx, js []job) error {
	if len(js) == 0 {
		return nil
	}
	st := tx.StmtContext(ctx, l.stmts.release)
	now := store.Millis(l.r.opts.Now())
	for _, j := range js {
		if _, err := st.ExecContext(ctx, now, j.delivery); err != nil {
			return fmt.Errorf("release delivery %d: %w", j.delivery, err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
