package webhook

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/store"
)

// Targets returns every active endpoint ready to sign and send to. An
// endpoint whose row cannot be used (a secret that does not open under
// this master key) is left out and named in the error, which then comes
// with the usable targets: one broken endpoint must not stop the others.
func (s *Endpoints) Targets(ctx context.Context) ([]Target, error) {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT `+targetCols+`
		FROM webhook_endpoints WHERE status = 'active' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load targets: %w", err)
	}
	defer rows.Close()
	var (
		ts   []Target
		errs []error
	)
	for rows.Next() {
		t, err := s.scanTarget(rows)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ts = append(ts, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load targets: %w", err)
	}
	return ts, errors.Join(errs...)
}

// Target returns one endpoint's target, whatever its status (a manual
// retry may go to a disabled endpoint). Returns ErrNotFound.
func (s *Endpoints) Target(ctx context.Context, id string) (Target, error) {
	t, err := s.scanTarget(s.db.Read.QueryRowContext(ctx, `SELECT `+targetCols+`
		FROM webhook_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Target{}, ErrNotFound
	}
	return t, err
}

const targetCols = `id, url, headers, headers_sealed, secret_sealed, prev_secret_sealed, prev_expires_at,
	rate_per_second, rate_burst, ordering, failing_since, alerted, type, dest_config, dest_sealed`

func (s *Endpoints) scanTarget(sc interface{ Scan(...any) error }) (Target, error) {
	var (
		t                      Target
		headers                string
		hsealed, sealed, prev  []byte
		prevExpiresAt, failing sql.NullInt64
		destConfig             string
		destSealed             []byte
	)
	if err := sc.Scan(&t.ID, &t.URL, &headers, &hsealed, &sealed, &prev, &prevExpiresAt,
		&t.RateLimit.PerSecond, &t.RateLimit.Burst, &t.Ordering, &failing, &t.Alerted, &t.Type, &destConfig, &destSealed); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Target{}, err
		}
		return Target{}, fmt.Errorf("load target: %w", err)
	}
	h, err := s.openHeaders(t.ID, hsealed, headers)
	if err != nil {
		return Target{}, err
	}
	t.Headers = h
	if u, err := parseURL(t.URL); err == nil {
		t.u, t.uRaw = u, t.URL
	}
	d, err := s.openDest(t.ID, t.Type, destConfig, destSealed)
	if err != nil {
		return Target{}, err
	}
	t.NATS, t.AMQP, t.Kafka, t.StoreID = d.NATS, d.AMQP, d.Kafka, s.opts.StoreID
	if failing.Valid {
		t.FailingSince = store.FromMillis(failing.Int64)
	}
	secret, err := s.master.Open(sealed, aad(t.ID, "secret"))
	if err != nil {
		return Target{}, fmt.Errorf("open secret of %s: %w", t.ID, err)
	}
	k, err := ParseKey(string(secret))
	if err != nil {
		return Target{}, fmt.Errorf("secret of %s: %w", t.ID, err)
	}
	t.Keys = []Key{k}
	if prev != nil && prevExpiresAt.Valid && s.opts.Now().Before(store.FromMillis(prevExpiresAt.Int64)) {
		old, err := s.master.Open(prev, aad(t.ID, "prev"))
		if err != nil {
			return Target{}, fmt.Errorf("open previous secret of %s: %w", t.ID, err)
		}
		if k, err := ParseKey(string(old)); err == nil {
			t.Keys = append(t.Keys, k)
		}
	}
	return t, nil
}

// NextExpiry returns the earliest time a previous secret stops signing,
// zero if none is overlapping; the relay reloads its targets then.
func (s *Endpoints) NextExpiry(ctx context.Context) (time.Time, error) {
	var ms sql.NullInt64
	err := s.db.Read.QueryRowContext(ctx, "SELECT MIN(prev_expires_at) FROM webhook_endpoints WHERE prev_expires_at > ?",
		store.Millis(s.opts.Now())).Scan(&ms)
	if err != nil || !ms.Valid {
		return time.Time{}, err
	}
	return store.FromMillis(ms.Int64), nil
}

// SubscribersTx returns the active endpoints whose filter takes
// eventType, inside the caller's transaction (the outbox fans out there).
func SubscribersTx(ctx context.Context, tx *sql.Tx, eventType string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id FROM webhook_endpoints WHERE status = 'active'
		AND (events = '[]' OR EXISTS (SELECT 1 FROM json_each(events) WHERE value = ?))`, eventType)
	if err != nil {
		return nil, fmt.Errorf("find subscribers: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find subscribers: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// DisableTx disables an endpoint inside the caller's transaction, with a
// reason shown to the admin ("gone" after a 410).
func (s *Endpoints) DisableTx(ctx context.Context, tx *sql.Tx, id, reason string) error {
	_, err := tx.ExecContext(ctx, "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = ?, updated_at = ? WHERE id = ?",
		reason, store.Millis(s.opts.Now()), id)
	if err != nil {
		return fmt.Errorf("disable endpoint %s: %w", id, err)
	}
	s.changed()
	return nil
}

// FailingTx records that an attempt to endpoint id failed at now, inside
// the caller's transaction: the first failure after a success starts the
// run the circuit breaker measures. It returns when the run began.
func (s *Endpoints) FailingTx(ctx context.Context, tx *sql.Tx, id string, now time.Time) (time.Time, error) {
	var since int64
	err := tx.QueryRowContext(ctx, `UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?)
		WHERE id = ? RETURNING failing_since`, store.Millis(now), id).Scan(&since)
	if errors.Is(err, sql.ErrNoRows) {
		return now, nil // deleted meanwhile
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("record failure of endpoint %s: %w", id, err)
	}
	return store.FromMillis(since), nil
}

// SucceededTx ends endpoint id's run of failures inside the caller's
// transaction and reports whether an operational event had gone out
// during it (the caller then sends endpoint.recovered).
func (s *Endpoints) SucceededTx(ctx context.Context, tx *sql.Tx, id string) (alerted bool, err error) {
	err = tx.QueryRowContext(ctx, "SELECT alerted FROM webhook_endpoints WHERE id = ?", id).Scan(&alerted)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err == nil {
		_, err = tx.ExecContext(ctx, "UPDATE webhook_endpoints SET failing_since = NULL, alerted = 0 WHERE id = ?", id)
	}
	if err != nil {
		return false, fmt.Errorf("record success of endpoint %s: %w", id, err)
	}
	return alerted, nil
}

// AlertedTx marks that an operational event about endpoint id went out.
func (s *Endpoints) AlertedTx(ctx context.Context, tx *sql.Tx, id string) error {
	if _, err := tx.ExecContext(ctx, "UPDATE webhook_endpoints SET alerted = 1 WHERE id = ?", id); err != nil {
		return fmt.Errorf("mark endpoint %s alerted: %w", id, err)
	}
	return nil
}

// SealStoredHeaders seals the custom headers of endpoints written before
// headers were sealed (migration 0005) and masks their headers column,
// and returns how many it sealed. It runs at start, before anything is
// delivered. secure_delete zeroes the old cells and a TRUNCATE checkpoint
// empties the WAL, so the plaintext leaves the database files, not just
// the rows.
func (s *Endpoints) SealStoredHeaders(ctx context.Context) (int, error) {
	var n int
	err := s.db.Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM webhook_endpoints WHERE headers_sealed IS NULL").Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	conn, err := s.db.Write.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("seal stored headers: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA secure_delete = ON"); err != nil {
		return 0, fmt.Errorf("seal stored headers: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA secure_delete = OFF") //nolint:errcheck // best effort: the setting only costs speed
	n = 0
	err = func() error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
		rows, err := tx.QueryContext(ctx, "SELECT id, headers FROM webhook_endpoints WHERE headers_sealed IS NULL")
		if err != nil {
			return err
		}
		plain := map[string]string{}
		for rows.Next() {
			var id, h string
			if err := rows.Scan(&id, &h); err != nil {
				rows.Close()
				return err
			}
			plain[id] = h
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for id, raw := range plain {
			h, err := s.openHeaders(id, nil, raw)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE webhook_endpoints SET headers = ?, headers_sealed = ? WHERE id = ?",
				mustJSON(maskHeaders(h)), s.sealHeaders(id, h), id); err != nil {
				return err
			}
			n++
		}
		return tx.Commit()
	}()
	if err != nil {
		return 0, fmt.Errorf("seal stored headers: %w", err)
	}
	var busy, logFrames, done int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		return n, fmt.Errorf("checkpoint after sealing headers: %w", err)
	}
	if busy != 0 {
		return n, errors.New("checkpoint after sealing headers: the database was busy; the plaintext may linger in the WAL until the next checkpoint")
	}
	s.changed()
	return n, nil
}
