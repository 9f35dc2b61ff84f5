package fiscal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/store"
)

// Retry puts a dead or refused registration back at the head of the
// queue with a fresh attempt budget. It returns ErrRegistrationNotFound
// or ErrNotRetryable.
func (r *Registrations) Retry(ctx context.Context, id string) (FiscalizationStatus, error) {
	now := store.Millis(r.opts.Now())
	err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, "SELECT state FROM fiscal_registrations WHERE id = ?", id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrRegistrationNotFound
		}
		if err != nil {
			return fmt.Errorf("read registration %s: %w", id, err)
		}
		if state != RegDead && state != RegError {
			return fmt.Errorf("%w (%s)", ErrNotRetryable, state)
		}
		_, err = tx.ExecContext(ctx, `UPDATE fiscal_registrations SET state = 'pending', attempts = 0, next_attempt_at = ?,
			updated_at = ? WHERE id = ?`, now, now, id)
		return err
	})
	if err != nil {
		return FiscalizationStatus{}, err
	}
	r.Wake()
	st, err := registrationStatus(ctx, r.db.Write, id, r.opts.Deadline)
	if err != nil {
		return FiscalizationStatus{}, err
	}
	return *st, nil
}

// Status returns a registration's state; ErrRegistrationNotFound if none.
func (r *Registrations) Status(ctx context.Context, id string) (FiscalizationStatus, error) {
	st, err := registrationStatus(ctx, r.db.Read, id, r.opts.Deadline)
	if err != nil {
		return FiscalizationStatus{}, err
	}
	if st == nil {
		return FiscalizationStatus{}, ErrRegistrationNotFound
	}
	return *st, nil
}

// registrationStatus reads a registration; nil if there is none.
func registrationStatus(ctx context.Context, q querier, id string, deadline time.Duration) (*FiscalizationStatus, error) {
	var (
		st              FiscalizationStatus
		blocking, sends int
		issued, next    int64
		done            sql.NullInt64
	)
	err := q.QueryRowContext(ctx, `SELECT state, result, attempts, last_error, code, blocking, completed_at, issued_at,
		next_attempt_at, sends FROM fiscal_registrations WHERE id = ?`, id).
		Scan(&st.Status, &st.FIC, &st.Attempts, &st.LastError, &st.Code, &blocking, &done, &issued, &next, &sends)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read registration of %s: %w", id, err)
	}
	st.Blocking = blocking != 0
	st.Subsequently = sends > 1
	if deadline == 0 {
		deadline = 48 * time.Hour
	}
	st.DeadlineAt = store.FromMillis(issued).Add(deadline)
	if done.Valid {
		t := store.FromMillis(done.Int64)
		st.CompletedAt = &t
	}
	if st.Status == RegPending {
		t := store.FromMillis(next)
		st.NextAttempt = &t
	}
	return &st, nil
}

// Backlog is the queue's state for /healthz.
type Backlog struct {
	Pending int `json:"pending"`
	Errors  int `json:"errors"`
	Dead    int `json:"dead"`
	// Oldest is the oldest invoice without a FIC; nil if none.
	Oldest *OldestUnregistered `json:"oldest_without_fic"`
	// Offline: the last attempt found the service unreachable.
	Offline bool `json:"offline"`
}

// OldestUnregistered is the invoice that has waited longest for its FIC.
type OldestUnregistered struct {
	InvoiceID  string    `json:"invoice_id"`
	IssuedAt   time.Time `json:"issued_at"`
	DeadlineAt time.Time `json:"deadline_at"`
	Status     string    `json:"status"`
}

// Backlog counts registrations waiting and finds the oldest invoice
// without a FIC.
func (r *Registrations) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	err := r.db.Read.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'error'), 0), COALESCE(SUM(state = 'dead'), 0)
		FROM fiscal_registrations INDEXED BY fiscal_registrations_open WHERE state != 'completed'`).Scan(&b.Pending, &b.Errors, &b.Dead)
	if err != nil {
		return Backlog{}, fmt.Errorf("count registrations: %w", err)
	}
	var (
		o      OldestUnregistered
		issued int64
		class  string
	)
	err = r.db.Read.QueryRowContext(ctx, `SELECT id, issued_at, state, last_class FROM fiscal_registrations
		INDEXED BY fiscal_registrations_open WHERE state != 'completed' AND kind = 'invoice' ORDER BY seq LIMIT 1`).Scan(&o.InvoiceID, &issued, &o.Status, &class)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return Backlog{}, fmt.Errorf("find oldest invoice without FIC: %w", err)
	default:
		o.IssuedAt = store.FromMillis(issued)
		o.DeadlineAt = o.IssuedAt.Add(r.opts.Deadline)
		b.Oldest = &o
		b.Offline = class == ClassOffline
	}
	return b, nil
}

// AwaitFIC returns the invoice's FIC once it is registered, waiting at
// most wait (the receipt's short wait); "" if it is not registered by
// then, or cannot be soon (no job, refused, dead, or the link is down).
func (r *Registrations) AwaitFIC(ctx context.Context, invoiceID string, wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		var state, fic, class string
		err := r.db.Read.QueryRowContext(ctx, "SELECT state, result, last_class FROM fiscal_registrations WHERE id = ?", invoiceID).
			Scan(&state, &fic, &class)
		switch {
		case err != nil:
			return ""
		case state == RegCompleted:
			return fic
		case state != RegPending || class == ClassOffline || !time.Now().Before(deadline):
			return ""
		}
		select {
		case <-ctx.Done():
			return ""
		case <-time.After(min(50*time.Millisecond, time.Until(deadline))):
		}
	}
}

// Get returns any registration's kind and state; ErrRegistrationNotFound
// if none.
func (r *Registrations) Get(ctx context.Context, id string) (string, FiscalizationStatus, error) {
	var kind string
	err := r.db.Read.QueryRowContext(ctx, "SELECT kind FROM fiscal_registrations WHERE id = ?", id).Scan(&kind)
	if errors.Is(err, sql.ErrNoRows) {
		return "", FiscalizationStatus{}, ErrRegistrationNotFound
	}
	if err != nil {
		return "", FiscalizationStatus{}, fmt.Errorf("read registration %s: %w", id, err)
	}
	st, err := r.Status(ctx, id)
	return kind, st, err
}
