package idempotency

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
)

// Errors returned by Begin.
var (
	// ErrMismatch: the key was used before with a different request.
	ErrMismatch = errors.New("idempotency key was used with a different request")
	// ErrInProgress: the first request with this key is still running.
	ErrInProgress = errors.New("a request with this idempotency key is still in progress")
)

// TTL is how long a key is remembered.
const TTL = 24 * time.Hour

// Response is a stored answer.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Store keeps idempotency records in SQLite.
//
// A kept answer may hold a secret shown once (a new API key's
// client_secret, a webhook's whsec_), so bodies are sealed under the
// master key, bound to their scope and key, and never stored in plaintext.
type Store struct {
	db     *store.DB
	master *masterkey.Key
	now    func() time.Time
}

// New returns a Store over db that seals kept answers with master.
func New(db *store.DB, master *masterkey.Key) *Store {
	if db == nil || master == nil {
		panic("idempotency: db and master key are required")
	}
	return &Store{db: db, master: master, now: time.Now}
}

// aad binds a sealed body to its row.
func aad(scope, key string) []byte { return []byte(scope + "\x00" + key) }

// SetClock replaces the clock (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Begin claims key for a request whose hash is reqHash. It returns:
//   - (nil, nil): the key is new and now reserved; the caller runs the
//     request and then calls Complete or Release;
//   - (resp, nil): the key was completed before with the same request;
//     resp is the first answer, to be sent again;
//   - ErrMismatch or ErrInProgress.
func (s *Store) Begin(ctx context.Context, scope, key string, reqHash []byte) (*Response, error) {
	var resp *Response
	now := s.now()
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var (
			hash    []byte
			status  int
			ct      string
			body    []byte
			expires int64
		)
		err := tx.QueryRowContext(ctx, `SELECT request_hash, status, content_type, body, expires_at
			FROM idempotency_keys WHERE key_id = ? AND idem_key = ?`, scope, key).
			Scan(&hash, &status, &ct, &body, &expires)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read idempotency key: %w", err)
		case expires <= store.Millis(now):
			if _, err := tx.ExecContext(ctx, "DELETE FROM idempotency_keys WHERE key_id = ? AND idem_key = ?", scope, key); err != nil {
				return fmt.Errorf("expire idempotency key: %w", err)
			}
		case subtle.ConstantTimeCompare(hash, reqHash) != 1:
			return ErrMismatch
		case status == 0:
			return ErrInProgress
		default:
			plain, err := s.master.Open(body, aad(scope, key))
			if err != nil {
				return fmt.Errorf("open kept answer: %w", err)
			}
			resp = &Response{Status: status, ContentType: ct, Body: plain}
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO idempotency_keys (key_id, idem_key, request_hash, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?)`, scope, key, reqHash, store.Millis(now), store.Millis(now.Add(TTL)))
		if err != nil {
			return fmt.Errorf("reserve idempotency key: %w", err)
		}
		// Prune a small batch of expired keys while the lock is held anyway.
		_, err = tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE rowid IN
			(SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT 50)`, store.Millis(now))
		if err != nil {
			return fmt.Errorf("prune idempotency keys: %w", err)
		}
		return nil
	})
	return resp, err
}

// Complete stores the answer to a reserved key.
func (s *Store) Complete(ctx context.Context, scope, key string, r Response) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET status = ?, content_type = ?, body = ?
			WHERE key_id = ? AND idem_key = ?`, r.Status, r.ContentType, s.master.Seal(r.Body, aad(scope, key)), scope, key)
		if err != nil {
			return fmt.Errorf("complete idempotency key: %w", err)
		}
		return nil
	})
}

// Release forgets a reserved key, so the client may retry it: used when
// the request failed in a way that changed nothing (a 5xx, a panic).
func (s *Store) Release(ctx context.Context, scope, key string) error {
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM idempotency_keys WHERE key_id = ? AND idem_key = ? AND status = 0", scope, key)
		if err != nil {
			return fmt.Errorf("release idempotency key: %w", err)
		}
		return nil
	})
}

// ReleaseAbandoned forgets keys left reserved by a process that died
// mid-request. Call it once at start-up, before serving: in a single
// process nothing else can be running them.
func (s *Store) ReleaseAbandoned(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM idempotency_keys WHERE status = 0")
		if err != nil {
			return fmt.Errorf("release abandoned idempotency keys: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return n, err
}
