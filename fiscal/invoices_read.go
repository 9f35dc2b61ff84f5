package fiscal

import (
	"context"
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

// ErrBadCursor is returned by List for a cursor it did not make.
var ErrBadCursor = errors.New("invalid cursor")

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Get returns an invoice with its print job's state. Returns
// ErrInvoiceNotFound if there is none.
func (s *Invoices) Get(ctx context.Context, id string) (Invoice, error) {
	return s.get(ctx, s.db.Read, id)
}

func (s *Invoices) getTx(ctx context.Context, tx *sql.Tx, id string) (Invoice, error) {
	return s.get(ctx, tx, id)
}

func (s *Invoices) get(ctx context.Context, q querier, id string) (Invoice, error) {
	var doc []byte
	err := q.QueryRowContext(ctx, "SELECT doc FROM invoices WHERE id = ?", id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return Invoice{}, ErrInvoiceNotFound
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("get invoice %s: %w", id, err)
	}
	return s.decode(ctx, q, doc)
}

func (s *Invoices) byIdempotencyKey(ctx context.Context, tx *sql.Tx, keyID, idem string) (Invoice, error) {
	var doc []byte
	err := tx.QueryRowContext(ctx, "SELECT doc FROM invoices WHERE key_id = ? AND idempotency_key = ?", keyID, idem).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return Invoice{}, ErrInvoiceNotFound
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("find invoice by idempotency key: %w", err)
	}
	return s.decode(ctx, tx, doc)
}

// decode reads a stored invoice and attaches its print job's state.
func (s *Invoices) decode(ctx context.Context, q querier, doc []byte) (Invoice, error) {
	var inv Invoice
	if err := json.Unmarshal(doc, &inv); err != nil {
		return Invoice{}, fmt.Errorf("decode invoice: %w", err)
	}
	ps, err := printStatus(ctx, q, inv.ID)
	if err != nil {
		return Invoice{}, err
	}
	inv.Print = ps
	if inv.Fiscalization, err = registrationStatus(ctx, q, inv.ID, 0); err != nil {
		return Invoice{}, err
	}
	return inv, nil
}

// ListParams select a page of invoices.
type ListParams struct {
	Since  time.Time // created at or after; zero for all
	Cursor string    // from the previous page's next cursor
	Limit  int       // default 50, at most 200
}

// List returns invoices in the order they were created, oldest first,
// and the cursor of the next page ("" after the last).
func (s *Invoices) List(ctx context.Context, p ListParams) ([]Invoice, string, error) {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	p.Limit = min(p.Limit, 200)
	afterMs, afterID := store.Millis(p.Since), ""
	if p.Since.IsZero() {
		afterMs = 0
	}
	if p.Cursor != "" {
		ms, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		afterMs, afterID = ms, id
	}
	rows, err := s.db.Read.QueryContext(ctx, `SELECT created_at, id, doc FROM invoices
		WHERE (created_at > ?) OR (created_at = ? AND id > ?)
		ORDER BY created_at, id LIMIT ?`, afterMs, afterMs, afterID, p.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list invoices: %w", err)
	}
	type row struct {
		ms  int64
		id  string
		doc []byte
	}
	var page []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.ms, &r.id, &r.doc); err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("list invoices: %w", err)
		}
		page = append(page, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list invoices: %w", err)
	}
	next := ""
	if len(page) > p.Limit {
		page = page[:p.Limit]
		last := page[len(page)-1]
		next = encodeCursor(last.ms, last.id)
	}
	out := make([]Invoice, 0, len(page))
	for _, r := range page {
		inv, err := s.decode(ctx, s.db.Read, r.doc)
		if err != nil {
			return nil, "", err
		}
		out = append(out, inv)
	}
	return out, next, nil
}

// A cursor is the position after the last row of a page: its creation
// time and id. It is opaque to clients.
func encodeCursor(ms int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ms, 10) + ":" + id))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", ErrBadCursor
	}
	msText, id, ok := strings.Cut(string(b), ":")
	ms, err := strconv.ParseInt(msText, 10, 64)
	if !ok || err != nil || id == "" {
		return 0, "", ErrBadCursor
	}
	return ms, id, nil
}
