package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
)

// Roles.
const (
	RoleAdmin = "admin"
	RolePOS   = "pos"
)

// Sentinel errors. Authentication failures are deliberately not told
// apart to the client (all become 401); the api package logs which one.
var (
	ErrNotFound      = errors.New("api key not found")
	ErrRevoked       = errors.New("api key revoked")
	ErrBadSecret     = errors.New("api key secret does not match")
	ErrBadSignature  = errors.New("request signature does not match")
	ErrStale         = errors.New("request timestamp outside the accepted window")
	ErrReplay        = errors.New("request signature already used")
	ErrMalformed     = errors.New("malformed credentials")
	ErrInvalidRole   = errors.New("role must be admin or pos")
	ErrInvalidLabel  = errors.New("label must be 1 to 100 characters")
	ErrAlreadyRevoke = errors.New("api key already revoked")
	// ErrTooManySigned: the key made more signed requests than the replay
	// window may remember for it (Keys.MaxSigned); a *SignedLimitError
	// wraps it.
	ErrTooManySigned = errors.New("too many signed requests for this api key")
	// ErrUnknownCertificate: the certificate to bind does not exist.
	ErrUnknownCertificate = errors.New("no certificate with this id")
	// ErrInactiveCertificate: the certificate to bind was deactivated.
	ErrInactiveCertificate = errors.New("certificate is deactivated")
)

// Key is an API key as listed: never with its secret.
type Key struct {
	ID            string     `json:"id"`
	ClientID      string     `json:"client_id"`
	Label         string     `json:"label"`
	Role          string     `json:"role"`
	CertificateID *string    `json:"certificate_id"`
	CreatedAt     time.Time  `json:"created_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
}

// Created is a key just made, with the secret the client must keep. It is
// the only time the secret exists outside the client.
type Created struct {
	Key
	ClientSecret string `json:"client_secret"`
}

// NewParams describe a key to create.
type NewParams struct {
	Label         string
	Role          string
	CertificateID string // empty: none bound
}

// Keys manages API keys in the store.
type Keys struct {
	db     *store.DB
	master *masterkey.Key
	// Window is how far a signed request's timestamp may be from now.
	Window time.Duration
	now    func() time.Time
	// decoy stands in for an unknown client id (see lookupOrDecoy).
	decoy struct {
		key          Key
		hash, sealed []byte
	}
	checks atomic.Int64 // secrets and signatures compared (tests)
	// MaxSigned bounds the MACs remembered for one key: at most that many
	// signed requests per twice the Window (how long a MAC is kept),
	// refilled evenly. Set before use; New sets 10,000.
	MaxSigned int

	signedMu sync.Mutex
	signed   map[string]*rate.Limiter // key id -> signed requests budget; guarded by signedMu
}

// SignedLimitError is ErrTooManySigned with when the next signed request
// of the key will be remembered.
type SignedLimitError struct{ RetryAfter time.Duration }

func (e *SignedLimitError) Error() string { return ErrTooManySigned.Error() }
func (e *SignedLimitError) Unwrap() error { return ErrTooManySigned }

// New returns Keys over db, sealing secrets with master.
func New(db *store.DB, master *masterkey.Key) *Keys {
	if db == nil || master == nil {
		panic("apikey: db and master key are required")
	}
	k := &Keys{db: db, master: master, Window: 5 * time.Minute, now: time.Now, MaxSigned: 10_000,
		signed: map[string]*rate.Limiter{}}
	secret := "sk_" + randomText(32)
	k.decoy.key = Key{ID: "key_" + randomText(12)}
	k.decoy.hash = hashSecret(secret)
	k.decoy.sealed = master.Seal([]byte(secret), []byte(k.decoy.key.ID))
	return k
}

// SetClock replaces the clock (tests).
func (k *Keys) SetClock(now func() time.Time) { k.now = now }

// Validate checks params, returning an error that names the field.
func (p NewParams) Validate() error {
	if l := len(strings.TrimSpace(p.Label)); l == 0 || len(p.Label) > 100 {
		return ErrInvalidLabel
	}
	if p.Role != RoleAdmin && p.Role != RolePOS {
		return ErrInvalidRole
	}
	return nil
}

// Create makes a key and returns it with its secret.
func (k *Keys) Create(ctx context.Context, p NewParams) (Created, error) {
	var c Created
	err := k.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		c, err = k.CreateTx(ctx, tx, p)
		return err
	})
	return c, err
}

// CreateTx is Create inside the caller's transaction.
func (k *Keys) CreateTx(ctx context.Context, tx *sql.Tx, p NewParams) (Created, error) {
	if err := p.Validate(); err != nil {
		return Created{}, err
	}
	id := "key_" + randomText(12)
	secret := "sk_" + randomText(32)
	now := k.now().UTC().Truncate(time.Millisecond)
	c := Created{
		Key: Key{
			ID:        id,
			ClientID:  "pk_" + randomText(12),
			Label:     p.Label,
			Role:      p.Role,
			CreatedAt: now,
		},
		ClientSecret: secret,
	}
	var cert any
	if p.CertificateID != "" {
		if err := checkCertificateTx(ctx, tx, p.CertificateID); err != nil {
			return Created{}, err
		}
		c.CertificateID = &p.CertificateID
		cert = p.CertificateID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO api_keys
		(id, client_id, label, role, secret_hash, secret_sealed, certificate_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.ClientID, c.Label, c.Role, hashSecret(secret), k.master.Seal([]byte(secret), []byte(c.ID)),
		cert, store.Millis(now))
	if err != nil {
		return Created{}, fmt.Errorf("insert api key: %w", err)
	}
	return c, nil
}

// List returns every key, newest first, revoked ones included.
func (k *Keys) List(ctx context.Context) ([]Key, error) {
	rows, err := k.db.Read.QueryContext(ctx, `SELECT id, client_id, label, role, certificate_id, created_at, revoked_at
		FROM api_keys ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	keys := []Key{}
	for rows.Next() {
		key, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// Get returns one key by id. Returns ErrNotFound if there is none.
func (k *Keys) Get(ctx context.Context, id string) (Key, error) {
	row := k.db.Read.QueryRowContext(ctx, `SELECT id, client_id, label, role, certificate_id, created_at, revoked_at
		FROM api_keys WHERE id = ?`, id)
	key, err := scanKey(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrNotFound
	}
	if err != nil {
		return Key{}, fmt.Errorf("get api key %s: %w", id, err)
	}
	return key, nil
}

// Revoke revokes a key; it fails the very next request that uses it.
// Returns ErrNotFound for an unknown id and ErrAlreadyRevoke if revoked.
func (k *Keys) Revoke(ctx context.Context, id string) (Key, error) {
	var key Key
	err := k.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
			store.Millis(k.now()), id)
		if err != nil {
			return fmt.Errorf("revoke api key %s: %w", id, err)
		}
		n, _ := res.RowsAffected()
		row := tx.QueryRowContext(ctx, `SELECT id, client_id, label, role, certificate_id, created_at, revoked_at
			FROM api_keys WHERE id = ?`, id)
		key, err = scanKey(row)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("revoke api key %s: %w", id, err)
		}
		if n == 0 {
			return ErrAlreadyRevoke
		}
		return nil
	})
	return key, err
}

// BindCertificateTx binds (or, with "", unbinds) a certificate to a key.
func (k *Keys) BindCertificateTx(ctx context.Context, tx *sql.Tx, id, certificateID string) error {
	var cert any
	if certificateID != "" {
		if err := checkCertificateTx(ctx, tx, certificateID); err != nil {
			return err
		}
		cert = certificateID
	}
	res, err := tx.ExecContext(ctx, "UPDATE api_keys SET certificate_id = ? WHERE id = ?", cert, id)
	if err != nil {
		return fmt.Errorf("bind certificate to %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// checkCertificateTx is the check a foreign key from api_keys to
// certificates would make (the tables come from different migrations, so
// SQLite cannot add one): a key is bound only to a certificate that exists
// and is not deactivated, whoever binds it (API, CLI, --dev). Returns
// ErrUnknownCertificate or ErrInactiveCertificate.
func checkCertificateTx(ctx context.Context, tx *sql.Tx, id string) error {
	var deactivated sql.NullInt64
	err := tx.QueryRowContext(ctx, "SELECT deactivated_at FROM certificates WHERE id = ?", id).Scan(&deactivated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrUnknownCertificate
	case err != nil:
		return fmt.Errorf("check certificate %s: %w", id, err)
	case deactivated.Valid:
		return ErrInactiveCertificate
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

// scanKey scans the key columns, then any extra columns into extra.
func scanKey(s scanner, extra ...any) (Key, error) {
	var (
		key       Key
		cert      sql.NullString
		created   int64
		revokedAt sql.NullInt64
	)
	dest := append([]any{&key.ID, &key.ClientID, &key.Label, &key.Role, &cert, &created, &revokedAt}, extra...)
	if err := s.Scan(dest...); err != nil {
		return Key{}, err
	}
	key.CreatedAt = store.FromMillis(created)
	if cert.Valid {
		key.CertificateID = &cert.String
	}
	if revokedAt.Valid {
		t := store.FromMillis(revokedAt.Int64)
		key.RevokedAt = &t
	}
	return key, nil
}

// hashSecret hashes a client secret for storage. The secret carries 192
// random bits, so a plain SHA-256 cannot be brute-forced; a slow password
// hash would only add latency to every request.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// randomText returns n random bytes as unpadded base64url.
func randomText(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("apikey: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// equal compares in constant time.
func equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
