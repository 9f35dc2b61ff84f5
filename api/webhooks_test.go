package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/apikey"
	"github.com/posgate/posgate/idempotency"
	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

type whEnv struct {
	t     *testing.T
	srv   *httptest.Server
	db    *store.DB
	admin string // X-Api-Key value
	pos   string
}

func newWHEnv(t *testing.T, so webhook.SenderOptions) *whEnv {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "posgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mk, err := masterkey.New(bytes.Repeat([]byte{3}, masterkey.Size))
	if err != nil {
		t.Fatal(err)
	}
	keys := apikey.New(db, mk)
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	if so.Timeout == 0 {
		so.Timeout = 2 * time.Second
	}
	hooks := webhook.New(db, mk, webhook.NewSender(so), webhook.Options{})
	relay := outbox.NewRelay(db, hooks, log, outbox.Options{Poll: 10 * time.Millisecond, Schedule: []time.Duration{20 * time.Millisecond}, MaxAttempts: 2})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(api.NewHandler(api.Deps{Log: log, Store: db, Keys: keys, Idem: idempotency.New(db, mk),
		Webhooks: hooks, Outbox: relay}))
	t.Cleanup(srv.Close)
	admin, err := keys.Create(ctx, apikey.NewParams{Label: "admin", Role: apikey.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	pos, err := keys.Create(ctx, apikey.NewParams{Label: "till", Role: apikey.RolePOS})
	if err != nil {
		t.Fatal(err)
	}
	return &whEnv{t: t, srv: srv, db: db, admin: admin.ClientID + ":" + admin.ClientSecret, pos: pos.ClientID + ":" + pos.ClientSecret}
}

// do sends a request and decodes the JSON answer into a map.
func (e *whEnv) do(key, method, path, body string, hdr ...string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("X-Api-Key", key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			e.t.Fatalf("%s %s: body %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, m, resp.Header
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func receiver(t *testing.T, status int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestWebhookRoutes(t *testing.T) {
	e := newWHEnv(t, webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true})
	rcv, hits := receiver(t, 200)
	body := `{"url":"` + rcv.URL + `","events":["webhook.test","invoice.created"],"description":"ERP","metadata":{"store":"7"}}`

	if st, m, _ := e.do(e.pos, "POST", "/v1/webhooks", body, "Idempotency-Key", "a"); st != 403 {
		t.Fatalf("pos key: %d %v", st, m)
	}
	if st, m, _ := e.do(e.admin, "POST", "/v1/webhooks", body); st != 400 || errCode(m) != api.CodeIdempotencyMissing {
		t.Fatalf("no Idempotency-Key: %d %v", st, m)
	}
	st, created, _ := e.do(e.admin, "POST", "/v1/webhooks", body, "Idempotency-Key", "k1")
	if st != 201 || !strings.HasPrefix(created["secret"].(string), "whsec_") || created["status"] != "active" {
		t.Fatalf("create: %d %v", st, created)
	}
	id := created["id"].(string)
	st, again, h := e.do(e.admin, "POST", "/v1/webhooks", body, "Idempotency-Key", "k1")
	if st != 201 || again["id"] != id || again["secret"] != created["secret"] || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %v", st, again)
	}
	if st, m, _ := e.do(e.admin, "POST", "/v1/webhooks", `{"url":"`+rcv.URL+`/x"}`, "Idempotency-Key", "k1"); st != 422 || errCode(m) != api.CodeIdempotencyReused {
		t.Fatalf("reused key: %d %v", st, m)
	}
	var leaked int
	_ = e.db.Read.QueryRow("SELECT COUNT(*) FROM idempotency_keys WHERE CAST(body AS TEXT) LIKE '%whsec_%'").Scan(&leaked)
	if leaked != 0 {
		t.Fatal("a secret was stored in idempotency_keys")
	}

	st, got, _ := e.do(e.admin, "GET", "/v1/webhooks/"+id, "")
	if st != 200 || got["secret"] != nil || got["pending"] == nil {
		t.Fatalf("get: %d %v", st, got)
	}
	st, list, _ := e.do(e.admin, "GET", "/v1/webhooks", "")
	if data, _ := list["data"].([]any); st != 200 || len(data) != 1 {
		t.Fatalf("list: %d %v", st, list)
	}

	st, ev, _ := e.do(e.admin, "POST", "/v1/webhooks/"+id+"/test", "", "Idempotency-Key", "t1")
	if st != 202 || ev["type"] != "webhook.test" {
		t.Fatalf("test: %d %v", st, ev)
	}
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load() < 2 && time.Now().Before(deadline) { // ping + test
		time.Sleep(10 * time.Millisecond)
	}
	var ds map[string]any
	for time.Now().Before(deadline) {
		_, ds, _ = e.do(e.admin, "GET", "/v1/webhooks/"+id+"/deliveries?state=delivered", "")
		if data, _ := ds["data"].([]any); len(data) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	data, _ := ds["data"].([]any)
	if len(data) != 1 {
		t.Fatalf("deliveries: %v", ds)
	}
	d := data[0].(map[string]any)
	attempts := d["attempts"].([]any)
	if d["state"] != "delivered" || d["event_id"] != ev["id"] || len(attempts) != 1 || attempts[0].(map[string]any)["status_code"] != 200.0 {
		t.Fatalf("delivery %v", d)
	}
	if st, m, _ := e.do(e.admin, "POST", "/v1/deliveries/"+d["id"].(string)+"/retry", ""); st != 409 {
		t.Fatalf("retry delivered: %d %v", st, m)
	}
	if st, m, _ := e.do(e.admin, "GET", "/v1/webhooks/"+id+"/deliveries?state=bogus", ""); st != 400 || errCode(m) != api.CodeValidation {
		t.Fatalf("bad state: %d %v", st, m)
	}

	st, evs, _ := e.do(e.admin, "GET", "/v1/events?type=webhook.test&since=2020-01-01T00:00:00Z", "")
	if data, _ := evs["data"].([]any); st != 200 || len(data) != 1 {
		t.Fatalf("events: %d %v", st, evs)
	}
	if st, m, _ := e.do(e.admin, "GET", "/v1/events?since=yesterday", ""); st != 400 {
		t.Fatalf("bad since: %d %v", st, m)
	}

	if st, m, _ := e.do(e.admin, "POST", "/v1/webhooks/"+id+"/rotate-secret", ""); st != 400 {
		t.Fatalf("rotate without Idempotency-Key: %d %v", st, m)
	}
	st, rot, _ := e.do(e.admin, "POST", "/v1/webhooks/"+id+"/rotate-secret", "", "Idempotency-Key", "rot-1")
	if st != 200 || rot["secret"] == created["secret"] || rot["previous_secret_expires_at"] == nil {
		t.Fatalf("rotate: %d %v", st, rot)
	}
	// A retry gets the same new secret: the rotation happened once.
	if st, again, _ := e.do(e.admin, "POST", "/v1/webhooks/"+id+"/rotate-secret", "", "Idempotency-Key", "rot-1"); st != 200 || again["secret"] != rot["secret"] {
		t.Fatalf("retried rotate: %d %v", st, again)
	}
	st, upd, _ := e.do(e.admin, "PATCH", "/v1/webhooks/"+id, `{"status":"disabled","category":"erp"}`)
	if st != 200 || upd["status"] != "disabled" || upd["category"] != "erp" || upd["description"] != "ERP" {
		t.Fatalf("patch: %d %v", st, upd)
	}
	if st, m, _ := e.do(e.admin, "PATCH", "/v1/webhooks/"+id, `{"headers":{"Webhook-Signature":"x"}}`); st != 400 || errCode(m) != api.CodeValidation {
		t.Fatalf("reserved header: %d %v", st, m)
	}
	if st, m, _ := e.do(e.admin, "PATCH", "/v1/webhooks/"+id, `{"bogus":1}`); st != 400 || errCode(m) != api.CodeInvalidJSON {
		t.Fatalf("unknown field: %d %v", st, m)
	}
	if st, m, _ := e.do(e.admin, "POST", "/v1/webhooks/"+id+"/recover", `{"since":"2020-01-01T00:00:00Z"}`); st != 200 || m["requeued"] != 0.0 {
		t.Fatalf("recover: %d %v", st, m)
	}
	if st, _, _ := e.do(e.admin, "DELETE", "/v1/webhooks/"+id, ""); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	if st, m, _ := e.do(e.admin, "GET", "/v1/webhooks/"+id, ""); st != 404 {
		t.Fatalf("after delete: %d %v", st, m)
	}
}

func TestWebhookCreateRefusals(t *testing.T) {
	t.Run("ErrHTTP", func(t *testing.T) {
		e := newWHEnv(t, webhook.SenderOptions{AllowPrivate: true})
		rcv, hits := receiver(t, 200)
		st, m, _ := e.do(e.admin, "POST", "/v1/webhooks", `{"url":"`+rcv.URL+`"}`, "Idempotency-Key", "1")
		if st != 400 || errCode(m) != api.CodeValidation || hits.Load() != 0 {
			t.Fatalf("http:// without allow_http: %d %v", st, m)
		}
	})
	t.Run("ErrLoopbackTLS", func(t *testing.T) {
		var conns atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		srv.Config.ConnState = func(_ net.Conn, _ http.ConnState) { conns.Add(1) }
		srv.StartTLS()
		t.Cleanup(srv.Close)
		e := newWHEnv(t, webhook.SenderOptions{TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig})
		st, m, _ := e.do(e.admin, "POST", "/v1/webhooks", `{"url":"`+srv.URL+`"}`, "Idempotency-Key", "1")
		details, _ := m["error"].(map[string]any)["details"].(map[string]any)
		if st != 422 || errCode(m) != api.CodeEndpointValidation || details["error_class"] != "blocked" {
			t.Fatalf("https://127.0.0.1 without allow_private: %d %v", st, m)
		}
		if conns.Load() != 0 {
			t.Fatalf("receiver saw %d connections", conns.Load())
		}
	})
	t.Run("ErrPing", func(t *testing.T) {
		e := newWHEnv(t, webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true})
		rcv, _ := receiver(t, 503)
		st, m, _ := e.do(e.admin, "POST", "/v1/webhooks", `{"url":"`+rcv.URL+`"}`, "Idempotency-Key", "1")
		details, _ := m["error"].(map[string]any)["details"].(map[string]any)
		if st != 422 || errCode(m) != api.CodeEndpointValidation || details["status"] != 503.0 {
			t.Fatalf("failing ping: %d %v", st, m)
		}
	})
	t.Run("ErrLimit", func(t *testing.T) {
		e := newWHEnv(t, webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true})
		rcv, _ := receiver(t, 200)
		for i := range 16 {
			if st, m, _ := e.do(e.admin, "POST", "/v1/webhooks", `{"url":"`+rcv.URL+`"}`, "Idempotency-Key", string(rune('a'+i))); st != 201 {
				t.Fatalf("endpoint %d: %d %v", i+1, st, m)
			}
		}
		st, m, _ := e.do(e.admin, "POST", "/v1/webhooks", `{"url":"`+rcv.URL+`"}`, "Idempotency-Key", "17")
		if st != 409 || errCode(m) != api.CodeEndpointLimit {
			t.Fatalf("17th: %d %v", st, m)
		}
	})
}
