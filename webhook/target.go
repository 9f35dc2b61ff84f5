package webhook

import (
	"context"
	"database/sql"
	"encoding/json"
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
	rows, err := s.db.Read.QueryContext(ctx, `SELECT id, url, headers, secret_sealed, prev_secret_sealed, prev_expires_at
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
	t, err := s.scanTarget(s.db.Read.QueryRowContext(ctx, `SELECT id, url, headers, secret_sealed, prev_secret_sealed, prev_expires_at
		FROM webhook_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Target{}, ErrNotFound
	}
	return t, err
}

func (s *Endpoints) scanTarget(sc interface{ Scan(...any) error }) (Target, error) {
	var (
		t             Target
		headers       string
		sealed, prev  []byte
		prevExpiresAt sql.NullInt64
	)
	if err := sc.Scan(&t.ID, &t.URL, &headers, &sealed, &prev, &prevExpiresAt); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Target{}, err
		}
		return Target{}, fmt.Errorf("load target: %w", err)
	}
	if err := json.Unmarshal([]byte(headers), &t.Headers); err != nil {
		return Target{}, fmt.Errorf("load target %s headers: %w", t.ID, err)
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
