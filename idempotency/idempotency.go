package idempotency

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"sync"
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
	// ErrLimit: the scope holds MaxLive kept answers already; Begin
	// returns a *LimitError that wraps it.
	ErrLimit = errors.New("too many idempotency keys kept for this API key")
)

// DefaultMaxLive is the default bound on kept answers per scope (API key).
const DefaultMaxLive = 10_000

// LimitError is ErrLimit with when a kept answer expires next.
type LimitError struct {
	Max        int
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v (%d within %s)", ErrLimit, e.Max, TTL)
}

func (e *LimitError) Unwrap() error { return ErrLimit }

// TTL is how long a key is remembered.
const TTL = 24 * time.Hour

// Response is a stored answer.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// Store keeps idempotency records.
//
// A request that is running is reserved in memory only: posgate is one
// process, so nothing else can race it, and a crash forgets reservations
// together with the requests they guarded. That keeps a synced write off
// the path from a creating POST to its device. Completed answers are
// written to SQLite, and a retry after a restart finds them there.
//
// A kept answer may hold a secret shown once (a new API key's
// client_secret, a webhook's whsec_), so bodies are sealed under the
// master key, bound to their scope and key, and never stored in plaintext.
//
// What one API key can make the store hold is bounded: at most MaxLive
// kept answers per scope at a time (a new key beyond that is ErrLimit
// until the oldest expire), and only answers the caller chose to keep
// (the api package keeps none for a refused request).
type Store struct {
	db     *store.DB
	master *masterkey.Key
	now    func() time.Time
	// MaxLive bounds the kept, unexpired answers per scope. Set before
	// use; New sets DefaultMaxLive.
	MaxLive int

	mu      sync.Mutex
	running map[string][]byte // scope+key -> request hash; guarded by mu
	// live is an upper bound of the kept answers per scope: counted from
	// the store when first needed or when it reaches MaxLive, and raised
	// by each answer kept since (expiry only lowers the truth). Guarded
	// by mu.
	live map[string]liveCount
}

type liveCount struct {
	n         int
	countedAt time.Time
}

// New returns a Store over db that seals kept answers with master.
func New(db *store.DB, master *masterkey.Key) *Store {
	if db == nil || master == nil {
		panic("idempotency: db and master key are required")
	}
	return &Store{db: db, master: master, now: time.Now, MaxLive: DefaultMaxLive,
		running: map[string][]byte{}, live: map[string]liveCount{}}
}

// SetClock replaces the clock (tests).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// aad binds a sealed body to its row; it also names a reservation.
func aad(scope, key string) []byte { return []byte(scope + "\x00" + key) }

// Begin claims key for a request whose hash is reqHash. It returns:
//   - (nil, nil): the key is new and now reserved; the caller runs the
//     request and then calls Complete or Release;
//   - (resp, nil): the key was completed before with the same request;
//     resp is the first answer, to be sent again;
//   - ErrMismatch or ErrInProgress;
//   - a *LimitError (ErrLimit) for a new key when the scope holds MaxLive
//     kept answers.
func (s *Store) Begin(ctx context.Context, scope, key string, reqHash []byte) (*Response, error) {
	name := string(aad(scope, key))
	s.mu.Lock()
	if h, ok := s.running[name]; ok {
		s.mu.Unlock()
		if subtle.ConstantTimeCompare(h, reqHash) != 1 {
			return nil, ErrMismatch
		}
		return nil, ErrInProgress
	}
	s.running[name] = reqHash
	s.mu.Unlock()

	resp, err := s.lookup(ctx, scope, key, reqHash)
	if resp == nil && err == nil {
		err = s.admit(ctx, scope)
	}
	if resp != nil || err != nil {
		s.forget(name)
	}
	return resp, err
}

// admit refuses a new key when the scope holds MaxLive kept answers. The
// count is kept in memory and read from the store only when unknown or
// when it reaches the bound (at most once a second then), so the path
// from a creating POST to its device gains no query.
func (s *Store) admit(ctx context.Context, scope string) error {
	now := s.now()
	s.mu.Lock()
	c, ok := s.live[scope]
	s.mu.Unlock()
	if ok && c.n < s.MaxLive {
		return nil
	}
	if !ok || now.Sub(c.countedAt) >= time.Second || now.Before(c.countedAt) {
		var n int
		err := s.db.Read.QueryRowContext(ctx, "SELECT count(*) FROM idempotency_keys WHERE key_id = ? AND expires_at > ?",
			scope, store.Millis(now)).Scan(&n)
		if err != nil {
			return fmt.Errorf("count idempotency keys: %w", err)
		}
		c = liveCount{n: n, countedAt: now}
		s.mu.Lock()
		s.live[scope] = c
		s.mu.Unlock()
	}
	if c.n < s.MaxLive {
		return nil
	}
	var next sql.NullInt64
	err := s.db.Read.QueryRowContext(ctx, "SELECT min(expires_at) FROM idempotency_keys WHERE key_id = ? AND expires_at > ?",
		scope, store.Millis(now)).Scan(&next)
	if err != nil {
		return fmt.Errorf("read next idempotency key expiry: %w", err)
	}
	wait := time.Second
	if next.Valid {
		wait = max(wait, store.FromMillis(next.Int64).Sub(now))
	}
	return &LimitError{Max: s.MaxLive, RetryAfter: wait}
}

// lookup finds a completed, unexpired answer.
func (s *Store) lookup(ctx context.Context, scope, key string, reqHash []byte) (*Response, error) {
	var (
		hash   []byte
		status int
		ct     string
		body   []byte
	)
	err := s.db.Read.QueryRowContext(ctx, `SELECT request_hash, status, content_type, body
		FROM idempotency_keys WHERE key_id = ? AND idem_key = ? AND status <> 0 AND expires_at > ?`,
		scope, key, store.Millis(s.now())).Scan(&hash, &status, &ct, &body)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read idempotency key: %w", err)
	case subtle.ConstantTimeCompare(hash, reqHash) != 1:
		return nil, ErrMismatch
	}
	plain, err := s.master.Open(body, aad(scope, key))
	if err != nil {
		return nil, fmt.Errorf("open kept answer: %w", err)
	}
	return &Response{Status: status, ContentType: ct, Body: plain}, nil
}

func (s *Store) forget(name string) {
	s.mu.Lock()
	delete(s.running, name)
	s.mu.Unlock()
}

// Complete stores the answer to a reserved key and ends the reservation.
// The answer is written before the reservation ends, so a retry waiting on
// it finds the answer.
func (s *Store) Complete(ctx context.Context, scope, key string, r Response) error {
	defer s.forget(string(aad(scope, key)))
	err := s.db.InTx(ctx, func(tx *sql.Tx) error { return s.CompleteTx(ctx, tx, scope, key, r) })
	if err == nil {
		s.Completed(scope, key)
	}
	return err
}

// CompleteTx writes the answer to a reserved key in tx: in the
// transaction of the change the request made, so both commit together.
// Once tx committed, the caller ends the reservation with Completed; if
// it did not, with Release.
func (s *Store) CompleteTx(ctx context.Context, tx *sql.Tx, scope, key string, r Response) error {
	name := string(aad(scope, key))
	s.mu.Lock()
	hash := s.running[name]
	s.mu.Unlock()
	now := s.now()
	_, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys
		(key_id, idem_key, request_hash, status, content_type, body, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key_id, idem_key) DO UPDATE SET request_hash = excluded.request_hash,
			status = excluded.status, content_type = excluded.content_type, body = excluded.body,
			created_at = excluded.created_at, expires_at = excluded.expires_at`,
		scope, key, hash, r.Status, r.ContentType, s.master.Seal(r.Body, aad(scope, key)),
		store.Millis(now), store.Millis(now.Add(TTL)))
	if err != nil {
		return fmt.Errorf("complete idempotency key: %w", err)
	}
	// Prune a small batch of expired keys while the lock is held anyway.
	_, err = tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE rowid IN
		(SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT 50)`, store.Millis(now))
	if err != nil {
		return fmt.Errorf("prune idempotency keys: %w", err)
	}
	return nil
}

// Completed ends the reservation of a key whose answer CompleteTx wrote
// in a transaction that committed.
func (s *Store) Completed(scope, key string) {
	s.mu.Lock()
	if c, ok := s.live[scope]; ok {
		c.n++
		s.live[scope] = c
	}
	delete(s.running, string(aad(scope, key)))
	s.mu.Unlock()
}

// Release ends a reservation without keeping an answer, so the client may
// retry: used when the request failed in a way that changed nothing (a
// 5xx, a panic).
func (s *Store) Release(_ context.Context, scope, key string) error {
	s.forget(string(aad(scope, key)))
	return nil
}
