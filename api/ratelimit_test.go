package api_test

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/apikey"
)

// clientFrom returns an HTTP client whose connections come from the
// loopback address local (Linux answers for all of 127.0.0.0/8).
func clientFrom(t *testing.T, local string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func getWith(t *testing.T, c *http.Client, url, apiKey string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("X-Api-Key", apiKey)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// Guessing is slow: after a burst of failures, wrong secrets get 429
// RATE_LIMITED with Retry-After without being checked, until the bucket
// refills; the real till using the correct secret from another address
// is never refused, even for the client id under attack.
func TestAuthRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnvWith(t, func(d *api.Deps) {
		d.Limiter = apikey.NewLimiter(apikey.LimiterOptions{Burst: 10, Every: 6 * time.Second, Now: clock})
	})
	attacker, till := clientFrom(t, "127.0.0.1"), clientFrom(t, "127.0.0.2")
	url := e.srv.URL + "/v1/devices"
	good := e.pos.ClientID + ":" + e.pos.ClientSecret
	if st, _, b := getWith(t, till, url, good); st != 200 && st != 503 {
		t.Fatalf("till before the attack: %d %s", st, b)
	}

	var unauthorized, limited int
	for i := range 300 {
		st, h, b := getWith(t, attacker, url, e.pos.ClientID+":sk_guess"+strings.Repeat("x", i%7))
		switch st {
		case 401:
			unauthorized++
		case 429:
			limited++
			var env struct {
				Error struct{ Code string } `json:"error"`
			}
			json.Unmarshal(b, &env)
			if env.Error.Code != api.CodeRateLimited || h.Get("Retry-After") != "6" {
				t.Fatalf("429 with code %q Retry-After %q: %s", env.Error.Code, h.Get("Retry-After"), b)
			}
		default:
			t.Fatalf("guess %d: status %d %s", i, st, b)
		}
		if i%50 == 0 { // the till keeps working all along, with the attacked client id
			if st, _, b := getWith(t, till, url, good); st == 401 || st == 429 {
				t.Fatalf("the real till was refused during the attack: %d %s", st, b)
			}
		}
	}
	if unauthorized != 10 || limited != 290 {
		t.Fatalf("%d guesses checked and %d rate-limited, want 10 and 290", unauthorized, limited)
	}
	// The unknown client ids an attacker tries next are limited by its
	// address's bucket, and the bucket refills with time.
	if st, _, _ := getWith(t, attacker, url, "pk_nobody:sk_x"); st != 429 {
		t.Fatalf("another client id from the limited address: %d, want 429", st)
	}
	mu.Lock()
	now = now.Add(6 * time.Second)
	mu.Unlock()
	if st, _, _ := getWith(t, attacker, url, "pk_nobody:sk_x"); st != 401 {
		t.Fatalf("after a refill: %d, want one more check (401)", st)
	}
}

// Past a key's budget of remembered MACs, signed requests get 429 with
// Retry-After, as JSON.
func TestSignedBudgetHTTP(t *testing.T) {
	e := newEnv(t)
	e.keys.MaxSigned = 1
	send := func(body string) response {
		stamp := time.Now().UTC().Format(time.RFC3339)
		sig := base64.StdEncoding.EncodeToString(apikey.Sign(e.admin.ClientSecret, stamp, "GET", "/v1/api-keys", []byte(body)))
		return e.do(t, "GET", "/v1/api-keys", nil, body, "X-Api-Key", e.admin.ClientID, "X-Timestamp", stamp, "X-Signature", sig)
	}
	if r := send(""); r.status != 200 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	r := send(" ")
	if code, _ := r.errorCode(t); r.status != 429 || code != api.CodeRateLimited || r.header.Get("Retry-After") != "600" {
		t.Fatalf("second: %d %s Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
	}
}
