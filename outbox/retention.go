package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/store"
)

// Prune runs one round of retention: at most RetentionBatch delivered
// rows older than RetainDelivered, dead rows older than RetainDead (their
// attempts go with them), and events older than RetainDelivered that have
// no delivery left; then it gives free pages back with incremental_vacuum.
// Each delete is its own short transaction so producers are never held
// up. more reports that a batch was full and another round is due.
func (r *Relay) Prune(ctx context.Context) (deleted int64, more bool, err error) {
	now := r.opts.Now()
	n := r.opts.RetentionBatch
	steps := []struct {
		what string
		q    string
		arg  time.Time
	}{
		{"delivered deliveries", `DELETE FROM outbox_deliveries WHERE id IN (SELECT id FROM outbox_deliveries
			WHERE state = 2 AND finished_at < ? LIMIT ?)`, now.Add(-r.opts.RetainDelivered)},
		{"dead deliveries", `DELETE FROM outbox_deliveries WHERE id IN (SELECT id FROM outbox_deliveries
			WHERE state = 3 AND finished_at < ? LIMIT ?)`, now.Add(-r.opts.RetainDead)},
		{"events", `DELETE FROM outbox_events WHERE seq IN (SELECT seq FROM outbox_events e
			WHERE e.created_at < ? AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d WHERE d.event_seq = e.seq) LIMIT ?)`,
			now.Add(-r.opts.RetainDelivered)},
	}
	for i, st := range steps {
		var c int64
		err := r.db.InTx(ctx, func(tx *sql.Tx) error {
			if i != 1 {
				res, err := tx.ExecContext(ctx, st.q, store.Millis(st.arg), n)
				if err != nil {
					return err
				}
				c, _ = res.RowsAffected()
				return nil
			}
			// Dead rows leave the dead counters.
			rows, err := tx.QueryContext(ctx, st.q+" RETURNING endpoint_id", store.Millis(st.arg), n)
			if err != nil {
				return err
			}
			t := tally{}
			for rows.Next() {
				var ep string
				if err := rows.Scan(&ep); err != nil {
					rows.Close()
					return err
				}
				t.add(ep, 0, -1)
				c++
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			return t.flush(ctx, tx)
		})
		if err != nil {
			return deleted, false, fmt.Errorf("prune %s: %w", st.what, err)
		}
		deleted += c
		more = more || c == int64(n)
	}
	if deleted > 0 {
		// auto_vacuum=INCREMENTAL (store.migrate): hand free pages back
		// a bounded number at a time instead of a full VACUUM.
		if _, err := r.db.Write.ExecContext(ctx, "PRAGMA incremental_vacuum(2000)"); err != nil {
			return deleted, more, fmt.Errorf("incremental vacuum: %w", err)
		}
	}
	return deleted, more, nil
}

// runRetention prunes when due, in small rounds until caught up.
func (l *loop) runRetention(ctx context.Context) {
	now := l.r.opts.Now()
	if now.Before(l.retention) {
		return
	}
	deleted, more, err := l.r.Prune(store.WithLowPriority(ctx))
	switch {
	case err != nil:
		l.r.log.Warn().Err(err).Msg("relay: retention failed; retrying later")
		l.retention = now.Add(time.Minute)
	case more:
		l.retention = now.Add(100 * time.Millisecond)
	default:
		l.retention = now.Add(l.r.opts.RetentionInterval)
	}
	if deleted > 0 {
		l.r.log.Debug().Int64("deleted", deleted).Bool("more", more).Msg("relay: retention round")
	}
}
