package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Signature and identity headers set on every delivery. Custom endpoint
// headers can never override them.
const (
	HeaderTimestamp    = "X-Webhook-Timestamp"
	HeaderSignature    = "X-Webhook-Signature"
	HeaderStdID        = "Webhook-Id"
	HeaderStdTimestamp = "Webhook-Timestamp"
	HeaderStdSignature = "Webhook-Signature"
)

// SecretPrefix starts every endpoint secret.
const SecretPrefix = "whsec_"

// secretBytes is the number of random bytes in a secret (Standard Webhooks
// allows 24 to 64).
const secretBytes = 32

// ErrBadSecret is returned for a secret that is not whsec_ + base64.
var ErrBadSecret = errors.New("webhook secret must be whsec_ followed by base64")

// NewSecret returns a fresh secret: whsec_ + base64(32 random bytes).
func NewSecret() string {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		panic("webhook: crypto/rand failed: " + err.Error())
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// Key is one secret prepared for signing: the whole string keys the
// X-Webhook-Signature HMAC, the decoded bytes key the Standard Webhooks one.
// It keeps its keyed HMAC states for reuse, so signing allocates little.
type Key struct {
	whole string
	std   []byte
	seed  *sync.Pool // of hash.Hash keyed with whole
	stdh  *sync.Pool // of hash.Hash keyed with std
}

// ParseKey prepares secret for signing.
func ParseKey(secret string) (Key, error) {
	rest, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return Key{}, ErrBadSecret
	}
	std, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(std) == 0 {
		return Key{}, ErrBadSecret
	}
	k := Key{whole: secret, std: std}
	k.seed = &sync.Pool{New: func() any { return hmac.New(sha256.New, []byte(k.whole)) }}
	k.stdh = &sync.Pool{New: func() any { return hmac.New(sha256.New, k.std) }}
	return k, nil
}

// mac returns a reset HMAC from pool.
func mac(pool *sync.Pool) hash.Hash {
	m := pool.Get().(hash.Hash)
	m.Reset()
	return m
}

// Sign sets the five signature headers on h for body, sent as message id
// at time ts, signed with every key in order (the current secret first,
// then one still inside its rotation overlap). Both styles cover the exact
// bytes of body:
//
//	X-Webhook-Signature: sha256=hex(HMAC-SHA256(whole secret, "{ts}.{body}"))[,sha256=…]
//	webhook-signature:   v1,base64(HMAC-SHA256(decoded secret, "{id}.{ts}.{body}"))[ v1,…]
func Sign(h http.Header, id string, ts time.Time, body []byte, keys []Key) {
	var tsb [20]byte
	unix := strconv.AppendInt(tsb[:0], ts.Unix(), 10)
	var sum [sha256.Size]byte
	seed := make([]byte, 0, len(keys)*(len("sha256=,")+2*sha256.Size))
	std := make([]byte, 0, len(keys)*(len("v1, ")+base64.StdEncoding.EncodedLen(sha256.Size)))
	for i, k := range keys {
		m := mac(k.seed)
		m.Write(unix)
		m.Write([]byte{'.'})
		m.Write(body)
		if i > 0 {
			seed = append(seed, ',')
		}
		seed = append(seed, "sha256="...)
		seed = hex.AppendEncode(seed, m.Sum(sum[:0]))
		k.seed.Put(m)

		m = mac(k.stdh)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write(unix)
		m.Write([]byte{'.'})
		m.Write(body)
		if i > 0 {
			std = append(std, ' ')
		}
		std = append(std, "v1,"...)
		std = base64.StdEncoding.AppendEncode(std, m.Sum(sum[:0]))
		k.stdh.Put(m)
	}
	// Canonical keys, set directly: these run once per delivery.
	ts1 := string(unix)
	h[HeaderTimestamp] = []string{ts1}
	h[HeaderSignature] = []string{string(seed)}
	h[HeaderStdID] = []string{id}
	h[HeaderStdTimestamp] = []string{ts1}
	h[HeaderStdSignature] = []string{string(std)}
}
