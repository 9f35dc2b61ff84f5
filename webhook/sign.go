package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
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
type Key struct {
	whole string
	std   []byte
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
	return Key{whole: secret, std: std}, nil
}

// Sign sets the five signature headers on h for body, sent as message id
// at time ts, signed with every key in order (the current secret first,
// then one still inside its rotation overlap). Both styles cover the exact
// bytes of body:
//
//	X-Webhook-Signature: sha256=hex(HMAC-SHA256(whole secret, "{ts}.{body}"))[,sha256=…]
//	webhook-signature:   v1,base64(HMAC-SHA256(decoded secret, "{id}.{ts}.{body}"))[ v1,…]
func Sign(h http.Header, id string, ts time.Time, body []byte, keys []Key) {
	unix := strconv.FormatInt(ts.Unix(), 10)
	var seed, std []string
	for _, k := range keys {
		m := hmac.New(sha256.New, []byte(k.whole))
		m.Write([]byte(unix))
		m.Write([]byte{'.'})
		m.Write(body)
		seed = append(seed, "sha256="+hex.EncodeToString(m.Sum(nil)))

		m = hmac.New(sha256.New, k.std)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(unix))
		m.Write([]byte{'.'})
		m.Write(body)
		std = append(std, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	h.Set(HeaderTimestamp, unix)
	h.Set(HeaderSignature, strings.Join(seed, ","))
	h.Set(HeaderStdID, id)
	h.Set(HeaderStdTimestamp, unix)
	h.Set(HeaderStdSignature, strings.Join(std, " "))
}

// reserved reports whether a custom header name is one the sender sets
// itself: signature headers, and those that frame the request.
func reserved(name string) bool {
	n := strings.ToLower(name)
	if strings.HasPrefix(n, "webhook-") || strings.HasPrefix(n, "x-webhook-") {
		return true
	}
	switch n {
	case "host", "content-type", "content-length", "transfer-encoding", "connection",
		"keep-alive", "te", "trailer", "upgrade", "proxy-connection", "proxy-authorization", "user-agent":
		return true
	}
	return false
}
