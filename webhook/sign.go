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
	seed  *sync.Pool // of *keyedMAC keyed with whole
	stdh  *sync.Pool // of *keyedMAC keyed with std
}

// keyedMAC is a keyed HMAC state with scratch room for the short parts
// written before the body and for the sum (a slice of a local array
// passed to hash.Hash would escape and cost an allocation per delivery).
type keyedMAC struct {
	hash.Hash
	scratch [64]byte
	sum     [sha256.Size]byte
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
	k.seed = &sync.Pool{New: func() any { return &keyedMAC{Hash: hmac.New(sha256.New, []byte(k.whole))} }}
	k.stdh = &sync.Pool{New: func() any { return &keyedMAC{Hash: hmac.New(sha256.New, k.std)} }}
	return k, nil
}

// mac returns a reset HMAC from pool.
func mac(pool *sync.Pool) *keyedMAC {
	m := pool.Get().(*keyedMAC)
	m.Reset()
	return m
}

// Room for the five header values of up to two keys (a rotation's
// overlap): the timestamp, two hex and two base64 signatures.
const signRoom = 20 + 2*(len("sha256=,")+2*sha256.Size) + 2*(len("v1, ")+44)

// Sign sets the five signature headers on h for body, sent as message id
// at time ts, signed with every key in order (the current secret first,
// then one still inside its rotation overlap). Both styles cover the exact
// bytes of body:
//
//	X-Webhook-Signature: sha256=hex(HMAC-SHA256(whole secret, "{ts}.{body}"))[,sha256=…]
//	webhook-signature:   v1,base64(HMAC-SHA256(decoded secret, "{id}.{ts}.{body}"))[ v1,…]
func Sign(h http.Header, id string, ts time.Time, body []byte, keys []Key) {
	// All five values are cut from one string built on the stack: two
	// allocations per delivery (the string and the values) instead of ten.
	var room [signRoom]byte
	buf := strconv.AppendInt(room[:0], ts.Unix(), 10)
	tsEnd := len(buf)
	for i, k := range keys {
		m := mac(k.seed)
		p := append(append(m.scratch[:0], buf[:tsEnd]...), '.')
		m.Write(p)
		m.Write(body)
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, "sha256="...)
		buf = hex.AppendEncode(buf, m.Sum(m.sum[:0]))
		k.seed.Put(m)
	}
	seedEnd := len(buf)
	for i, k := range keys {
		m := mac(k.stdh)
		// "{id}.{ts}." in pieces: an id longer than the scratch is
		// written as it is.
		p := m.scratch[:0]
		if len(id)+tsEnd+2 <= len(m.scratch) {
			p = append(append(append(append(p, id...), '.'), buf[:tsEnd]...), '.')
			m.Write(p)
		} else {
			m.Write([]byte(id))
			m.Write(append(append(append(p, '.'), buf[:tsEnd]...), '.'))
		}
		m.Write(body)
		if i > 0 {
			buf = append(buf, ' ')
		}
		buf = append(buf, "v1,"...)
		buf = base64.StdEncoding.AppendEncode(buf, m.Sum(m.sum[:0]))
		k.stdh.Put(m)
	}
	all := string(buf)
	v := make([]string, 5)
	v[0], v[1], v[2], v[3], v[4] = all[:tsEnd], all[tsEnd:seedEnd], id, all[:tsEnd], all[seedEnd:]
	// Canonical keys, set directly: these run once per delivery. Each
	// value slice is capped so an append by a caller cannot reach the
	// next one.
	h[HeaderTimestamp] = v[0:1:1]
	h[HeaderSignature] = v[1:2:2]
	h[HeaderStdID] = v[2:3:3]
	h[HeaderStdTimestamp] = v[3:4:4]
	h[HeaderStdSignature] = v[4:5:5]
}
