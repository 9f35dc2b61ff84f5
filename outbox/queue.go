package outbox

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// stmts are the relay's hot statements, prepared once. The claim's run
// on the read pool: they read only committed rows, so what they find can
// be sent before the batch that records earlier results has committed
// (see loop.step); those that read rows to send (due, dueFrom, fetch) go
// through claims, on a connection of the pool the relay holds. The ack's
// run on the writer connection, through Tx.StmtContext inside each
// transaction.
type stmts struct {
	head, minDue, deliver, finish, attempt *sql.Stmt
	claims                                 *claimReader
}

// deliveredJSON collects a batch's delivered results of one endpoint as
// the JSON array the deliver statement reads: [[id, n, status,
// started_ms, duration_ms, "hex of the response snippet"], ...].
type deliveredJSON []byte

func (a deliveredJSON) add(res *result) deliveredJSON {
	if len(a) == 0 {
		a = append(a, '[')
	} else {
		a = append(a, ',')
	}
	a = append(a, '[')
	for _, v := range [...]int64{res.delivery, int64(res.n), int64(res.Status), store.Millis(res.started), res.Duration.Milliseconds()} {
		a = strconv.AppendInt(a, v, 10)
		a = append(a, ',')
	}
	a = append(a, '"')
	a = hex.AppendEncode(a, res.Snippet)
	return append(a, '"', ']')
}

func prepare(ctx context.Context, db *store.DB) (*stmts, error) {
	var s stmts
	var errs []error
	p := func(dst **sql.Stmt, q string) {
		on := db.Read
		if dst == &s.deliver || dst == &s.finish || dst == &s.attempt {
			on = db.Write
		}
		st, err := on.PrepareContext(ctx, q)
		errs = append(errs, err)
		*dst = st
	}
	// A FIFO endpoint's head: its oldest pending delivery, due or not
	// (outbox_deliveries_fifo).
	p(&s.head, `SELECT id, next_attempt_at FROM outbox_deliveries
		WHERE endpoint_id = ? AND state = 0 ORDER BY id LIMIT 1`)
	p(&s.minDue, `SELECT MIN(next_attempt_at) FROM outbox_deliveries WHERE endpoint_id = ? AND state = 0 AND next_attempt_at > ?`)
	// A delivering attempt is recorded on the row itself: one write,
	// and one statement for all of an endpoint's deliveries in a batch
	// (deliveredJSON). attempts only grows: a manual attempt may have
	// taken a number meanwhile. jsonb_each, not json_each: each element
	// comes as JSONB, so its six ->> read it in place instead of parsing
	// its text six times (2.9 → 2.4 µs per row with a 760-row batch).
	p(&s.deliver, `UPDATE outbox_deliveries AS d SET state = 2, attempts = MAX(d.attempts, j.value ->> 1),
		last_status = j.value ->> 2, last_error = '', last_attempt_at = j.value ->> 3, last_duration_ms = j.value ->> 4,
		last_response = unhex(NULLIF(j.value ->> 5, '')), finished_at = ?
		FROM jsonb_each(?) AS j WHERE d.id = j.value ->> 0 AND d.state = 0`)
	p(&s.finish, `UPDATE outbox_deliveries SET state = ?, attempts = MAX(attempts, ?), budget_base = budget_base + ?,
		next_attempt_at = ?, last_status = ?, last_error = ?, finished_at = ? WHERE id = ? AND state = 0`)
	p(&s.attempt, `INSERT INTO outbox_attempts
		(delivery_id, n, kind, spent, started_at, duration_ms, status_code, error_class, error, response)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err := errors.Join(errs...); err != nil {
		s.close()
		return nil, fmt.Errorf("prepare relay statements: %w", err)
	}
	// Due rows of one endpoint with their events, oldest due first,
	// through outbox_deliveries_due (INDEXED BY: equality on the
	// endpoint and ORDER BY next_attempt_at, so it stops after LIMIT
	// rows whatever the backlog; CROSS JOIN keeps the deliveries the
	// outer loop). Rows the lane holds are skipped as they come; with the
	// lane's cursor (lane.after) they are few, so reading them whole
	// costs less than a covering scan of ids and a second query to fetch
	// the chosen rows.
	from := claimCols + `
		FROM outbox_deliveries AS d INDEXED BY outbox_deliveries_due CROSS JOIN outbox_events AS e ON e.seq = d.event_seq`
	due := from + `
		WHERE d.endpoint_id = ?1 AND d.state = 0 AND d.next_attempt_at > ?2 AND d.next_attempt_at <= ?3
		ORDER BY d.next_attempt_at, d.id LIMIT ?4`
	// The rest of the lane's cursor's millisecond: the index's order
	// within one next_attempt_at is the id, so this seeks straight past
	// what the lane holds. (A row value (next_attempt_at, id) > (?, ?)
	// does not seek on the rowid: SQLite 3.54 scans.)
	dueFrom := from + `
		WHERE d.endpoint_id = ?1 AND d.state = 0 AND d.next_attempt_at = ?2 AND d.id > ?3
		ORDER BY d.id LIMIT ?4`
	// One delivery with its event (a FIFO lane's head).
	fetch := claimCols + `
		FROM outbox_deliveries d JOIN outbox_events e ON e.seq = d.event_seq WHERE d.id = ?`
	var err error
	if s.claims, err = newClaimReader(ctx, db, due, dueFrom, fetch); err != nil {
		s.close()
		return nil, err
	}
	return &s, nil
}

func (s *stmts) close() {
	for _, st := range []*sql.Stmt{s.head, s.minDue, s.deliver, s.finish, s.attempt} {
		if st != nil {
			st.Close()
		}
	}
	if s.claims != nil {
		s.claims.close()
	}
}

// claim takes due deliveries for every lane with room and returns them
// by endpoint. It also sets each lane's next look-up time.
//
// The claim is held in memory (lane.held) rather than written to the
// row: one relay owns a store, so a written lease would only guard
// against itself, at the price of an UPDATE per delivery, and would
// delay the re-send after a crash until it expired. A held row stays
// pending in the store until its result commits, so a crash loses no
// claim: the next start sends it again.
//
// It reads through the read pool, outside any write transaction, so it
// sees committed rows only: a row a producer's transaction wrote in a
// batch not yet committed is never sent, and what it claims may go out
// while the relay's own bookkeeping commits. Rows whose results are not
// yet recorded stay held (lane.held) until their batch has committed, and
// a claim begun after that commit sees it.
func (l *loop) claim(ctx context.Context, now time.Time) (map[string][]job, error) {
	out := map[string][]job{}
	minDue, head := l.stmts.minDue, l.stmts.head
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
		if ln.fifo() {
			js, err := l.claimHead(ctx, head, ln, now, kind)
			if err != nil {
				return nil, fmt.Errorf("claim for %s: %w", id, err)
			}
			out[id] = js
			continue
		}
		js, more, err := l.claimLane(ctx, ln, now, n, kind)
		if err != nil {
			return nil, fmt.Errorf("claim for %s: %w", id, err)
		}
		out[id] = js
		switch {
		case l.offline && len(js) > 0:
			ln.nextClaim = now.Add(l.r.opts.ProbeInterval)
		case more:
			ln.nextClaim = now
		default:
			// Everything due is held; sleep until the next row falls due
			// (a held row's result reschedules the lane itself).
			var due sql.NullInt64
			if err := minDue.QueryRowContext(ctx, id, store.Millis(now)).Scan(&due); err != nil {
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

// claimHead claims a FIFO lane's head, its oldest pending delivery, when
// it is due; a later delivery is never sent before it. It sets the lane's
// next look-up time: the head's due time, or the next poll.
func (l *loop) claimHead(ctx context.Context, head *sql.Stmt, ln *lane, now time.Time, kind string) ([]job, error) {
	var id, next int64
	err := head.QueryRowContext(ctx, ln.id).Scan(&id, &next)
	if errors.Is(err, sql.ErrNoRows) {
		ln.nextClaim = now.Add(l.r.opts.Poll)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if due := store.FromMillis(next); due.After(now) {
		ln.nextClaim = due
		return nil, nil
	}
	ln.nextClaim = now // the next head, as soon as this one's result is recorded
	if l.offline {
		ln.nextClaim = now.Add(l.r.opts.ProbeInterval)
	}
	js, _, _, err := l.scanJobs(l.stmts.claims.fetch, namedArgs(id), ln, kind, nil, 1)
	return js, err
}

// scanJobs appends to js, up to n jobs in all, the rows st finds with
// args (a claim statement: claimCols) that ln does not hold, each with
// its body. more reports a row left over; lastAt is the last job's
// next_attempt_at.
func (l *loop) scanJobs(st driver.Stmt, args []driver.NamedValue, ln *lane, kind string, js []job, n int) (_ []job, more bool, lastAt int64, _ error) {
	err := l.stmts.claims.query(st, args, func(r *claimRow) bool {
		if _, held := ln.held[r.id]; held {
			return true
		}
		if len(js) == n {
			more = true
			return false
		}
		j := job{endpoint: ln.id, kind: kind, delivery: r.id, n: int(r.attempts) + 1, base: int(r.base),
			lastError: r.lastError, eventID: r.eventID, eventType: r.eventType, created: store.FromMillis(r.created)}
		j.body = l.r.placeBody(&j, r.framed)
		js, lastAt = append(js, j), r.at
		return true
	})
	return js, more, lastAt, err
}

// claimLane reads up to n due rows the lane does not hold yet. more
// reports that due rows were left over.
//
// It scans from the lane's cursor (lane.after), the last row it took:
// every due row before it is held, so a claim does not read again, one
// index entry at a time, the hundreds of rows in flight and awaiting
// their record (with claims ahead of acknowledgements, that was most of
// a claim's cost). A row can still fall due behind the cursor (a job
// handed back unsent, an enqueue that committed a moment after a claim
// that read a later time): those are found when the cursor starts over,
// which it does when a job comes back unsent, when the scan runs out of
// due rows, and every afterReset at the latest.
func (l *loop) claimLane(ctx context.Context, ln *lane, now time.Time, n int, kind string) (js []job, more bool, err error) {
	if !ln.after.since.IsZero() && now.Sub(ln.after.since) >= afterReset {
		ln.after = cursor{}
	}
	limit := n + len(ln.held) + 1
	js = make([]job, 0, n)
	var at int64
	if ln.after.set() {
		args := namedArgs(ln.id, ln.after.at, ln.after.id, int64(limit))
		if js, more, at, err = l.scanJobs(l.stmts.claims.dueFrom, args, ln, kind, js, n); err != nil {
			return nil, false, err
		}
	}
	if !more {
		from := int64(math.MinInt64)
		if ln.after.set() {
			from = ln.after.at
		}
		taken := len(js)
		args := namedArgs(ln.id, from, store.Millis(now), int64(limit))
		var lastAt int64
		if js, more, lastAt, err = l.scanJobs(l.stmts.claims.due, args, ln, kind, js, n); err != nil {
			return nil, false, err
		}
		if len(js) > taken {
			at = lastAt
		}
	}
	switch {
	case !more:
		ln.after = cursor{} // ran out: start over next time
	case !ln.after.set():
		ln.after.since = now
		fallthrough
	default:
		ln.after.at, ln.after.id = at, js[len(js)-1].delivery
	}
	return js, more, nil
}

// afterReset is how long a lane's claim cursor lasts before a claim
// scans its due rows from the start again.
const afterReset = time.Second

// cursor is where a lane's next claim scans from: after the row (at, id)
// in (next_attempt_at, id) order; since is when it last started over.
type cursor struct {
	at, id int64
	since  time.Time
}

func (c cursor) set() bool { return c.id != 0 }

// ack records a batch of results: each delivery's new state and its
// attempt row.
func (l *loop) ack(ctx context.Context, tx *sql.Tx, pending []result) error {
	if len(pending) == 0 {
		return nil
	}
	o := l.r.opts
	deliver := tx.StmtContext(ctx, l.stmts.deliver)
	finish := tx.StmtContext(ctx, l.stmts.finish)
	attempt := tx.StmtContext(ctx, l.stmts.attempt)
	now := o.Now()
	counts := tally{}
	delivered := map[string]deliveredJSON{}
	for i := range pending {
		res := &pending[i]
		if res.Class == webhook.ClassCanceled {
			// Stopped before or during the request: not the endpoint's
			// fault, no attempt. The row is still due; letting go of it
			// in memory is all a release takes.
			continue
		}
		var snippet any
		if len(res.Snippet) > 0 {
			snippet = res.Snippet
		}
		if res.OK() {
			delivered[res.endpoint] = delivered[res.endpoint].add(res)
			if err := l.succeeded(ctx, tx, *res); err != nil {
				return err
			}
			if ln := l.lanes[res.endpoint]; ln != nil && ln.failStreak > 0 {
				l.r.log.Info().Str(logkey.EndpointID, res.endpoint).Int("failed_attempts", ln.failStreak).
					Msg("webhook endpoint recovered")
				ln.failStreak = 0
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
		)
		unspent := 0
		switch {
		case res.Network && l.offline:
			// The store is offline: snooze without spending the attempt.
			// Its number stays used (numbers only grow); the budget
			// moves up by one instead.
			spent, unspent, next = false, 1, now.Add(o.ProbeInterval)
		case res.Status == 410:
			state, finAt = stateDead, store.Millis(now)
			if err := l.disable(ctx, tx, res.endpoint, "gone", now); err != nil {
				return err
			}
		case res.n-res.base >= o.MaxAttempts:
			state, finAt = stateDead, store.Millis(now)
		default:
			next = now.Add(o.Delay(res.n-res.base, res.RetryAfter))
		}
		nextMs := store.Millis(next)
		if next.IsZero() {
			nextMs = store.Millis(now)
		}
		r, err := finish.ExecContext(ctx, state, n, unspent, nextMs, res.Status, errMsg, finAt, res.delivery)
		if err != nil {
			return fmt.Errorf("record delivery %d: %w", res.delivery, err)
		}
		if c, _ := r.RowsAffected(); c == 0 {
			// Deleted with its endpoint, or finished by a manual retry.
			continue
		}
		if state == stateDead {
			counts.add(res.endpoint, -1, 1)
			if err := l.exhausted(ctx, tx, *res, errMsg); err != nil {
				return err
			}
		}
		if spent {
			if err := l.failed(ctx, tx, res.endpoint, now); err != nil {
				return err
			}
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
		// One warning at the 1st, 10th, 100th… failure in a row and for
		// every dead delivery; the rest at debug level.
		lvl, streak := zerolog.DebugLevel, 0
		if ln != nil && spent {
			ln.failStreak++
			streak = ln.failStreak
			if streak == 1 || streak == 10 || streak == 100 || streak%1000 == 0 {
				lvl = zerolog.WarnLevel
			}
		}
		if state == stateDead {
			lvl = zerolog.WarnLevel
		}
		ev := l.r.log.WithLevel(lvl).Bool("dead", state == stateDead)
		if !next.IsZero() {
			ev = ev.Time("next_attempt_at", next)
		}
		ev.Str(logkey.EndpointID, res.endpoint).Int64(logkey.DeliveryID, res.delivery).Str(logkey.MsgID, res.eventID).
			Int(logkey.Attempt, res.n).Int(logkey.Status, res.Status).Str("error_class", res.Class).Str("error", errMsg).
			Bool("spent", spent).Int("failed_attempts", streak).Msg("webhook delivery failed")
	}
	for ep, a := range delivered {
		r, err := deliver.ExecContext(ctx, store.Millis(now), string(append(a, ']')))
		if err != nil {
			return fmt.Errorf("record deliveries to %s: %w", ep, err)
		}
		// A row not pending any more (deleted with its endpoint, finished
		// by a manual attempt) is not counted.
		c, _ := r.RowsAffected()
		counts.add(ep, -c, 0)
	}
	return counts.flush(ctx, tx)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
