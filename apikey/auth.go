package apikey

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
	"golang.org/x/time/rate"

	"github.com/posgate/posgate/store"
)

// Credentials are what a request presents, read from its headers.
type Credentials struct {
	// APIKey is the X-Api-Key header: "client_id:secret", or "client_id"
	// alone for a signed request.
	APIKey string
	// Timestamp and Signature are X-Timestamp and X-Signature.
	Timestamp string
	Signature string
	// Method, PathQuery and Body are what the signature covers.
	Method    string
	PathQuery string
	Body      []byte
}

// Signed reports whether the credentials use the signed mode.
func (c Credentials) Signed() bool { return c.Timestamp != "" || c.Signature != "" }

// Authenticate returns the key the credentials belong to, or an error
// (ErrMalformed, ErrNotFound, ErrRevoked, ErrBadSecret, ErrStale,
// ErrBadSignature, ErrReplay, or a *SignedLimitError). It reads the key on every call, so a
// revocation applies to the very next request.
func (k *Keys) Authenticate(ctx context.Context, c Credentials) (Key, error) {
	if c.Signed() {
		return k.authenticateSigned(ctx, c)
	}
	clientID, secret, ok := strings.Cut(c.APIKey, ":")
	if !ok || clientID == "" || secret == "" {
		return Key{}, ErrMalformed
	}
	key, hash, _, found, err := k.lookupOrDecoy(ctx, clientID)
	if err != nil {
		return Key{}, err
	}
	k.checks.Add(1)
	match := equal(hashSecret(secret), hash)
	switch {
	case !found:
		return Key{}, ErrNotFound
	case !match:
		return Key{}, ErrBadSecret
	}
	if key.RevokedAt != nil {
		return Key{}, ErrRevoked
	}
	return key, nil
}

func (k *Keys) authenticateSigned(ctx context.Context, c Credentials) (Key, error) {
	if c.APIKey == "" || c.Timestamp == "" || c.Signature == "" || strings.Contains(c.APIKey, ":") {
		return Key{}, ErrMalformed
	}
	ts, err := time.Parse(time.RFC3339Nano, c.Timestamp)
	if err != nil {
		return Key{}, ErrMalformed
	}
	sig, err := decodeSignature(c.Signature)
	if err != nil {
		return Key{}, err
	}
	now := k.now()
	if d := now.Sub(ts); d > k.Window || d < -k.Window {
		return Key{}, ErrStale
	}
	key, _, sealed, found, err := k.lookupOrDecoy(ctx, c.APIKey)
	if err != nil {
		return Key{}, err
	}
	secret, err := k.master.Open(sealed, []byte(key.ID))
	if err != nil {
		return Key{}, fmt.Errorf("open sealed secret of %s: %w", key.ID, err)
	}
	k.checks.Add(1)
	match := hmac.Equal(sig, Sign(string(secret), c.Timestamp, c.Method, c.PathQuery, c.Body))
	switch {
	case !found:
		return Key{}, ErrNotFound
	case !match:
		return Key{}, ErrBadSignature
	}
	if key.RevokedAt != nil {
		return Key{}, ErrRevoked
	}
	budget := k.signedBudget(key.ID)
	if ok, wait := waitFor(budget, now); !ok {
		return Key{}, &SignedLimitError{RetryAfter: wait}
	}
	if err := k.remember(ctx, key.ID, sig, now); err != nil {
		return Key{}, err
	}
	budget.AllowN(now, 1) // spent only by a MAC remembered: replaying captured requests cannot drain it
	return key, nil
}

// decodeSignature decodes X-Signature, accepting only the one canonical
// standard-base64 spelling of a 32-byte MAC. A lax decoder ignores the two
// padding bits of the last character (and CR/LF anywhere), so one MAC has
// four or more spellings; accepting them would let a captured request be
// replayed once per spelling. Strict() refuses non-zero padding bits, and
// re-encoding refuses whatever else it still lets through.
func decodeSignature(s string) ([]byte, error) {
	sig, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(sig) != sha256.Size || base64.StdEncoding.EncodeToString(sig) != s {
		return nil, ErrMalformed
	}
	return sig, nil
}

// Sign computes a request signature: HMAC-SHA256 keyed with the client
// secret over "{timestamp}.{METHOD}.{path?query}.{raw body}". Clients do
// the same; see README "Signed requests".
func Sign(secret, timestamp, method, pathQuery string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write([]byte(method))
	m.Write([]byte{'.'})
	m.Write([]byte(pathQuery))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// signedBudget returns the key's budget of remembered MACs, which bounds
// the request_signatures rows one key can make the store hold.
func (k *Keys) signedBudget(keyID string) *rate.Limiter {
	k.signedMu.Lock()
	defer k.signedMu.Unlock()
	b, ok := k.signed[keyID]
	if !ok {
		b = rate.NewLimiter(rate.Limit(float64(k.MaxSigned)/(2*k.Window).Seconds()), k.MaxSigned)
		k.signed[keyID] = b
	}
	return b
}

// remember records a MAC as used; a second use is ErrReplay. The row is
// keyed on the MAC's bytes (written in canonical base64, as rows from
// before this rule were), never on the header text, so no other spelling
// of the same MAC can pass. Rows older than twice the window are pruned as
// it goes: a timestamp that old is refused as stale before its signature
// is looked at.
func (k *Keys) remember(ctx context.Context, keyID string, mac []byte, now time.Time) error {
	return k.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO request_signatures (signature, key_id, seen_at) VALUES (?, ?, ?)",
			base64.StdEncoding.EncodeToString(mac), keyID, store.Millis(now))
		var se sqlite3.Error
		if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
			return ErrReplay
		}
		if err != nil {
			return fmt.Errorf("record request signature: %w", err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM request_signatures WHERE rowid IN
			(SELECT rowid FROM request_signatures WHERE seen_at < ? LIMIT 100)`,
			store.Millis(now.Add(-2*k.Window)))
		if err != nil {
			return fmt.Errorf("prune request signatures: %w", err)
		}
		return nil
	})
}

// lookupOrDecoy is lookup that, for an unknown client id, returns the
// decoy key instead of ErrNotFound (found false), so the caller does the
// same hashing, unsealing and comparing for it as for a wrong secret: an
// unknown client id costs the same time and tells a guesser nothing.
func (k *Keys) lookupOrDecoy(ctx context.Context, clientID string) (Key, []byte, []byte, bool, error) {
	key, hash, sealed, err := k.lookup(ctx, clientID)
	if errors.Is(err, ErrNotFound) {
		return k.decoy.key, k.decoy.hash, k.decoy.sealed, false, nil
	}
	return key, hash, sealed, err == nil, err
}

func (k *Keys) lookup(ctx context.Context, clientID string) (Key, []byte, []byte, error) {
	var hash, sealed []byte
	row := k.db.Read.QueryRowContext(ctx, `SELECT id, client_id, label, role, certificate_id, created_at, revoked_at,
		secret_hash, secret_sealed FROM api_keys WHERE client_id = ?`, clientID)
	key, err := scanKey(row, &hash, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, nil, nil, ErrNotFound
	}
	if err != nil {
		return Key{}, nil, nil, fmt.Errorf("look up api key: %w", err)
	}
	return key, hash, sealed, nil
}
