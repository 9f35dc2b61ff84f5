package outbox_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// verify checks both signature styles of a received request against
// secret, independently of package webhook's signing code: the
// X-Webhook-Signature list (key = whole secret, "{ts}.{body}") and the
// Standard Webhooks list (key = decoded secret, "{id}.{ts}.{body}").
func verify(h http.Header, body []byte, secret string) error {
	ts := h.Get("X-Webhook-Timestamp")
	if ts == "" || ts != h.Get("Webhook-Timestamp") {
		return fmt.Errorf("timestamps %q and %q", ts, h.Get("Webhook-Timestamp"))
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	found := false
	for _, s := range strings.Split(h.Get("X-Webhook-Signature"), ",") {
		found = found || hmac.Equal([]byte(s), []byte(want))
	}
	if !found {
		return fmt.Errorf("X-Webhook-Signature %q has no match", h.Get("X-Webhook-Signature"))
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	m = hmac.New(sha256.New, key)
	m.Write([]byte(h.Get("Webhook-Id") + "." + ts + "." + string(body)))
	want = "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	found = false
	for _, s := range strings.Fields(h.Get("Webhook-Signature")) {
		found = found || hmac.Equal([]byte(s), []byte(want))
	}
	if !found {
		return fmt.Errorf("webhook-signature %q has no match", h.Get("Webhook-Signature"))
	}
	return nil
}
