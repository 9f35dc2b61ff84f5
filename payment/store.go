package payment

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/posgate/posgate/store"
)

// querier is what reads need: a *sql.DB or a *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// newID returns "pay_" and 96 random bits: ids from a reinstalled box
// never collide with ones a receiver has seen.
func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("payment: crypto/rand failed: " + err.Error())
	}
	return "pay_" + strings.ToLower(base64.RawURLEncoding.EncodeToString(b[:]))
}

// insertTx writes a new payment. The columns beside doc are copies of its
// fields for queries and constraints: the unique (key_id,
// idempotency_key) and the one open session per terminal.
func insertTx(ctx context.Context, tx *sql.Tx, r *record) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode payment: %w", err)
	}
	var orig, idem any
	if r.OriginalPaymentID != "" {
		orig = r.OriginalPaymentID
	}
	if r.IdemKey != "" {
		idem = r.IdemKey
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO payments (id, type, terminal_id, status, session_open,
		original_payment_id, key_id, idempotency_key, created_at, updated_at, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Type, r.TerminalID, r.Status, boolInt(r.Open), orig, r.KeyID, idem,
		store.Millis(r.CreatedAt), store.Millis(r.UpdatedAt), string(doc))
	if err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	return nil
}

// saveTx writes r back, keeping its query columns in step with doc.
func saveTx(ctx context.Context, tx *sql.Tx, r *record) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode payment: %w", err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE payments SET status = ?, session_open = ?, updated_at = ?, doc = ? WHERE id = ?`,
		r.Status, boolInt(r.Open), store.Millis(r.UpdatedAt), string(doc), r.ID)
	if err != nil {
		return fmt.Errorf("update payment %s: %w", r.ID, err)
	}
	return nil
}

const selectRecord = `SELECT key_id, COALESCE(idempotency_key, ''), doc FROM payments `

func scanRecord(row interface{ Scan(...any) error }) (*record, error) {
	var (
		r   record
		doc []byte
	)
	if err := row.Scan(&r.KeyID, &r.IdemKey, &doc); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("read payment: %w", err)
	}
	if err := json.Unmarshal(doc, &r); err != nil {
		return nil, fmt.Errorf("decode payment: %w", err)
	}
	return &r, nil
}

func getRecord(ctx context.Context, q querier, id string) (*record, error) {
	return scanRecord(q.QueryRowContext(ctx, selectRecord+`WHERE id = ?`, id))
}

func byIdempotencyKey(ctx context.Context, q querier, keyID, key string) (*record, error) {
	return scanRecord(q.QueryRowContext(ctx, selectRecord+`WHERE key_id = ? AND idempotency_key = ?`, keyID, key))
}

// openOn returns the payment whose session is open on the terminal, or
// ErrNotFound. The unique index allows one at most.
func openOn(ctx context.Context, q querier, terminalID string) (*record, error) {
	return scanRecord(q.QueryRowContext(ctx, selectRecord+`WHERE terminal_id = ? AND session_open = 1`, terminalID))
}

// reversalOf returns a reversal payment of id that is open, completed,
// or ended without a not_charged verdict (it may have voided the sale),
// or ErrNotFound.
func reversalOf(ctx context.Context, q querier, id string) (*record, error) {
	return scanRecord(q.QueryRowContext(ctx, selectRecord+`WHERE original_payment_id = ? AND type = 'reversal'
		AND (session_open = 1 OR status = 'completed'
			OR (status = 'timeout' AND COALESCE(json_extract(doc, '$.resolution'), '') <> 'not_charged')) LIMIT 1`, id))
}

// refundedOf sums the refunds of sale id that took money back or may
// still: completed, running, or timed out without a not_charged verdict.
// A refund counts with the larger of the amount asked and the amount the
// terminal reported (they differ only for one that needs review).
func refundedOf(ctx context.Context, q querier, id string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(MAX(json_extract(doc, '$.amount'),
			COALESCE(json_extract(doc, '$.info.Amount'), 0))), 0) FROM payments
		WHERE original_payment_id = ? AND type = 'refund'
		AND (session_open = 1 OR status = 'completed'
			OR (status = 'timeout' AND COALESCE(json_extract(doc, '$.resolution'), '') <> 'not_charged'))`, id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sum refunds of %s: %w", id, err)
	}
	return n, nil
}

// ListParams select a page of payments, oldest first.
type ListParams struct {
	Since  time.Time // created at or after; zero for all
	Cursor string    // from the previous page
	Limit  int       // default 50, at most 200
}

func listRecords(ctx context.Context, q querier, p ListParams) ([]*record, string, error) {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	p.Limit = min(p.Limit, 200)
	// A page starts after (created_at, id). Since is "after the last
	// millisecond before it, with an id above any" ('~' sorts after every
	// id character).
	afterMs, afterID := store.Millis(p.Since)-1, "~"
	if p.Since.IsZero() {
		afterMs = -1
	}
	if p.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil {
			return nil, "", ErrBadCursor
		}
		msText, id, ok := strings.Cut(string(b), ":")
		ms, err := strconv.ParseInt(msText, 10, 64)
		if !ok || err != nil || id == "" {
			return nil, "", ErrBadCursor
		}
		afterMs, afterID = ms, id
	}
	rows, err := q.QueryContext(ctx, `SELECT created_at, key_id, COALESCE(idempotency_key, ''), doc FROM payments
		WHERE (created_at > ?) OR (created_at = ? AND id > ?)
		ORDER BY created_at, id LIMIT ?`, afterMs, afterMs, afterID, p.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list payments: %w", err)
	}
	defer rows.Close()
	var (
		out []*record
		ms  []int64
	)
	for rows.Next() {
		var (
			r   record
			at  int64
			doc []byte
		)
		if err := rows.Scan(&at, &r.KeyID, &r.IdemKey, &doc); err != nil {
			return nil, "", fmt.Errorf("list payments: %w", err)
		}
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, "", fmt.Errorf("decode payment: %w", err)
		}
		out = append(out, &r)
		ms = append(ms, at)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list payments: %w", err)
	}
	next := ""
	if len(out) > p.Limit {
		out = out[:p.Limit]
		last := out[len(out)-1]
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ms[p.Limit-1], 10) + ":" + last.ID))
	}
	return out, next, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ReadTx returns payment id as stored, read in the caller's transaction
// (fiscal checks an invoice's card payment in the invoice's). Errors:
// ErrNotFound.
func ReadTx(ctx context.Context, tx *sql.Tx, id string) (Payment, error) {
	r, err := getRecord(ctx, tx, id)
	if err != nil {
		return Payment{}, err
	}
	return r.Payment, nil
}
