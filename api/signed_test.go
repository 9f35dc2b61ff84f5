//go:build linux || darwin

package api_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/apikey"
)

// spellings returns the four base64 spellings of a 32-byte MAC: 43
// characters carry 258 bits, so the last character before "=" has two
// padding bits a lax decoder ignores. The first is the canonical one.
func spellings(mac []byte) []string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	canon := base64.StdEncoding.EncodeToString(mac)
	last := strings.IndexByte(alphabet, canon[42])
	out := []string{canon}
	for bits := 1; bits < 4; bits++ {
		out = append(out, canon[:42]+string(alphabet[last|bits])+"=")
	}
	return out
}

// A signed payment replayed in another base64 spelling of its signature,
// with a fresh Idempotency-Key, must not charge the card again: exactly
// one spelling is accepted, once, and one payment exists.
func TestSignedPaymentSpellings(t *testing.T) {
	e := newPayEnv(t, payOptions{})
	body := saleBody(2000)
	stamp := time.Now().UTC().Format(time.RFC3339)
	mac := apikey.Sign(e.pos.ClientSecret, stamp, "POST", "/v1/payments", []byte(body))
	sigs := spellings(mac)
	for i, s := range sigs[1:] {
		if b, err := base64.StdEncoding.DecodeString(s); err != nil || string(b) != string(mac) {
			t.Fatalf("spelling %d %q does not decode to the MAC with a lax decoder: %v", i+1, s, err)
		}
	}
	accepted := 0
	for round := range 2 {
		for i, sig := range sigs {
			r := e.do(t, "POST", "/v1/payments", nil, body, "X-Api-Key", e.pos.ClientID, "X-Timestamp", stamp,
				"X-Signature", sig, "Idempotency-Key", fmt.Sprintf("spell-%d-%d", round, i), "Content-Type", "application/json")
			switch r.status {
			case 201:
				accepted++
				e.await(t, decodePayment(t, r).ID) // the terminal is free again for the next spelling
				if i != 0 {
					t.Errorf("non-canonical spelling %q accepted", sig)
				}
			case 401:
				if code, _ := r.errorCode(t); code != "UNAUTHORIZED" {
					t.Errorf("spelling %q: code %s", sig, code)
				}
			default:
				t.Errorf("spelling %q: status %d %s", sig, r.status, r.body)
			}
		}
	}
	if accepted != 1 {
		t.Fatalf("%d of 8 signed requests accepted, want exactly 1", accepted)
	}
	var n int
	if err := e.db.Read.QueryRow(`SELECT count(*) FROM payments`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d payments exist, want 1", n)
	}
}
