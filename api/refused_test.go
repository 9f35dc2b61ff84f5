package api_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/api"
)

// A refused request writes nothing: 10,000 invalid creating POSTs, of
// every kind a client gets wrong, leave the database and its WAL at the
// byte size they had, and no idempotency record behind.
func TestRefusedRequestsWriteNothing(t *testing.T) {
	// 10,000 request log lines would only slow the test down.
	e := newEnvWith(t, func(d *api.Deps) { d.Log = zerolog.Nop() })
	sizes := func() (int64, int64) {
		var s [2]int64
		for i, suffix := range []string{"", "-wal"} {
			fi, err := os.Stat(e.db.Path() + suffix)
			if err != nil {
				t.Fatal(err)
			}
			s[i] = fi.Size()
		}
		return s[0], s[1]
	}
	// Settle first: whatever the set-up wrote is in the WAL already.
	db0, wal0 := sizes()

	type bad struct {
		path, body string
		hdr        []string
		status     int
	}
	kinds := []bad{
		{"/v1/api-keys", `{"label":`, nil, 400},
		{"/v1/api-keys", `{"label":"x","role":"pos","colour":"red"}`, nil, 400},
		{"/v1/api-keys", `{"label":"x","role":"root"}`, nil, 400},
		{"/v1/api-keys", `{"label":"x","role":"pos","certificate_id":"cert_nope"}`, nil, 422},
		{"/v1/api-keys", `label=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"/v1/printers/p9/cash", `{"type":"in","amount":100}`, nil, 404},
		{"/v1/printers/p9/cash", `{"type":"sideways","amount":100}`, nil, 400},
		{"/v1/invoices", `{}`, nil, 503},
	}
	// Straight into the handler: the HTTP server adds nothing that writes,
	// and 10,000 loopback round trips under -race only cost time.
	h := e.srv.Config.Handler
	const total, workers = 10_000, 4
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < total; i += workers {
				k := kinds[i%len(kinds)]
				key := &e.admin
				if strings.HasPrefix(k.path, "/v1/printers") || k.path == "/v1/invoices" {
					key = &e.pos
				}
				req := httptest.NewRequest("POST", k.path, strings.NewReader(k.body))
				req.Header.Set("X-Api-Key", key.ClientID+":"+key.ClientSecret)
				req.Header.Set("Idempotency-Key", fmt.Sprint("refused-", i))
				for j := 0; j+1 < len(k.hdr); j += 2 {
					req.Header.Set(k.hdr[j], k.hdr[j+1])
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != k.status {
					errs <- fmt.Sprintf("POST %s %s: status %d, want %d", k.path, k.body, rec.Code, k.status)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	db1, wal1 := sizes()
	if db1 != db0 || wal1 != wal0 {
		t.Fatalf("after %d refused POSTs: db %d → %d bytes, WAL %d → %d bytes; want unchanged", total, db0, db1, wal0, wal1)
	}
	var n int
	if err := e.db.Read.QueryRow("SELECT count(*) FROM idempotency_keys").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d idempotency records kept for refused requests (%v)", n, err)
	}
}

// A refused answer is not kept: the same Idempotency-Key, corrected, is
// carried out (today's refusal must not stick for 24 h).
func TestRefusalIsNotReplayed(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/v1/api-keys", &e.admin, `{"label":"x","role":"root"}`, "Idempotency-Key", "fix-me")
	if r.status != 400 {
		t.Fatalf("bad role: %d %s", r.status, r.body)
	}
	r = e.do(t, "POST", "/v1/api-keys", &e.admin, `{"label":"x","role":"pos"}`, "Idempotency-Key", "fix-me")
	if r.status != 201 || r.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("corrected request with the same key: %d %s", r.status, r.body)
	}
}

// What one API key can make the store hold is bounded: past
// idempotency.Store.MaxLive kept answers, a new key is 429 with
// Retry-After, and a kept answer still replays.
func TestIdempotencyLimitPerKey(t *testing.T) {
	e := newEnvWith(t, func(d *api.Deps) { d.Idem.MaxLive = 2 })
	for i := range 2 {
		if r := e.do(t, "POST", "/v1/api-keys", &e.admin, fmt.Sprintf(`{"label":"k%d","role":"pos"}`, i), "Idempotency-Key", fmt.Sprint("lim-", i)); r.status != 201 {
			t.Fatalf("key %d: %d %s", i, r.status, r.body)
		}
	}
	r := e.do(t, "POST", "/v1/api-keys", &e.admin, `{"label":"k2","role":"pos"}`, "Idempotency-Key", "lim-2")
	if code, _ := r.errorCode(t); r.status != 429 || code != api.CodeIdempotencyLimit || r.header.Get("Retry-After") == "" {
		t.Fatalf("third key: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
	}
	if r := e.do(t, "POST", "/v1/api-keys", &e.admin, `{"label":"k0","role":"pos"}`, "Idempotency-Key", "lim-0"); r.status != 201 || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay at the limit: %d %s", r.status, r.body)
	}
}

// A duplicated key is refused, not resolved to its last value: the
// issue's "amount":-5,"amount":1301 once made a 1301 payment.
func TestDuplicateKeyRefused(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{
		`{"type":"in","amount":-5,"amount":1301}`,
		`{"type":"in","amount":1301,"Amount":-5}`,
	} {
		r := e.do(t, "POST", "/v1/printers/p1/cash", &e.pos, body, "Idempotency-Key", "dup-"+body[20:26])
		code, msg := r.errorCode(t)
		if r.status != 400 || code != api.CodeInvalidJSON || !strings.Contains(strings.ToLower(msg), "amount: ") {
			t.Fatalf("%s: %d %s %q", body, r.status, code, msg)
		}
	}
}
