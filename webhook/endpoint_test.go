package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

var master = func() *masterkey.Key {
	k, err := masterkey.New(bytes.Repeat([]byte{7}, masterkey.Size))
	if err != nil {
		panic(err)
	}
	return k
}()

func openStore(t *testing.T) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "posgate.db")
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func newEndpoints(t *testing.T, so webhook.SenderOptions) (*webhook.Endpoints, *store.DB, string) {
	t.Helper()
	db, path := openStore(t)
	return webhook.New(db, master, webhook.NewSender(so), webhook.Options{}), db, path
}

// okServer answers 200 and counts requests.
func okServer(t *testing.T, status int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

var loopbackOK = webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true, Timeout: 2 * time.Second}

func TestCreateSecretShownOnceAndSealed(t *testing.T) {
	eps, db, path := newEndpoints(t, loopbackOK)
	srv, pings := okServer(t, 200)
	ctx := context.Background()
	c, replayed, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL, Events: []string{"invoice.created"},
		Headers: map[string]string{"Authorization": "Bearer erp"}, Metadata: map[string]string{"store": "12"}})
	if err != nil || replayed {
		t.Fatalf("Create: %v, replayed %v", err, replayed)
	}
	if pings.Load() != 1 {
		t.Fatalf("ping requests=%d, want 1", pings.Load())
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(c.Secret, "whsec_"))
	if !strings.HasPrefix(c.Secret, "whsec_") || err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: want whsec_ + base64 of 32 bytes", c.Secret)
	}
	if c.Status != webhook.StatusActive || c.CreatedAt.IsZero() {
		t.Fatalf("endpoint %+v", c.Endpoint)
	}
	// Nowhere in the database file or its WAL is the secret in plaintext.
	db.Close()
	for _, f := range []string{path, path + "-wal"} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(c.Secret)) || bytes.Contains(b, raw) {
			t.Fatalf("%s holds the secret in plaintext", filepath.Base(f))
		}
	}
}

func TestCreateIdempotentReplay(t *testing.T) {
	eps, _, _ := newEndpoints(t, loopbackOK)
	srv, pings := okServer(t, 200)
	ctx := context.Background()
	p := webhook.NewParams{URL: srv.URL, IdemScope: "key_1", IdemKey: "k1", IdemHash: []byte("h1")}
	first, _, err := eps.Create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	again, replayed, err := eps.Create(ctx, p)
	if err != nil || !replayed || again.ID != first.ID || again.Secret != first.Secret {
		t.Fatalf("replay: %v replayed=%v %s/%s", err, replayed, again.ID, first.ID)
	}
	if pings.Load() != 1 {
		t.Fatalf("pings=%d, want 1", pings.Load())
	}
	p.IdemHash = []byte("other")
	if _, _, err := eps.Create(ctx, p); !errors.Is(err, webhook.ErrIdempotencyMismatch) {
		t.Fatalf("different body: %v", err)
	}
}

func TestCreateRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("ErrLimitReached", func(t *testing.T) {
		eps, _, _ := newEndpoints(t, loopbackOK)
		srv, _ := okServer(t, 200)
		for i := range 16 {
			if _, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL}); err != nil {
				t.Fatalf("endpoint %d: %v", i+1, err)
			}
		}
		if _, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL}); !errors.Is(err, webhook.ErrLimitReached) {
			t.Fatalf("17th: %v", err)
		}
	})
	t.Run("ErrHTTPNotAllowed", func(t *testing.T) {
		eps, _, _ := newEndpoints(t, webhook.SenderOptions{AllowPrivate: true})
		srv, n := okServer(t, 200)
		_, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL})
		var fe *webhook.FieldError
		if !errors.As(err, &fe) || fe.Field != "url" || !errors.Is(err, webhook.ErrHTTPNotAllowed) {
			t.Fatalf("http:// without allow_http: %v", err)
		}
		if n.Load() != 0 {
			t.Fatal("the receiver was contacted")
		}
	})
	t.Run("ErrBlockedLoopback", func(t *testing.T) {
		var conns atomic.Int64
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		srv.Config.ConnState = func(net.Conn, http.ConnState) { conns.Add(1) }
		srv.StartTLS()
		t.Cleanup(srv.Close)
		eps, _, _ := newEndpoints(t, webhook.SenderOptions{TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig})
		if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
			t.Fatalf("url %s", srv.URL)
		}
		_, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL})
		var pe *webhook.PingError
		if !errors.As(err, &pe) || pe.Result.Class != webhook.ClassBlocked {
			t.Fatalf("https://127.0.0.1 without allow_private: %v", err)
		}
		if conns.Load() != 0 {
			t.Fatalf("the receiver saw %d connections", conns.Load())
		}
		// The same server is fine with allow_private: the refusal was the
		// address policy, not TLS.
		eps2, _, _ := newEndpoints(t, webhook.SenderOptions{AllowPrivate: true, TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig})
		if _, _, err := eps2.Create(ctx, webhook.NewParams{URL: srv.URL}); err != nil {
			t.Fatalf("with allow_private: %v", err)
		}
	})
	t.Run("ErrPingFailed", func(t *testing.T) {
		eps, _, _ := newEndpoints(t, loopbackOK)
		srv, _ := okServer(t, 500)
		_, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL})
		var pe *webhook.PingError
		if !errors.As(err, &pe) || pe.Result.Status != 500 {
			t.Fatalf("failing ping: %v", err)
		}
		if l, _ := eps.List(ctx); len(l) != 0 {
			t.Fatalf("endpoint saved despite failed ping: %v", l)
		}
	})
	t.Run("ErrPingRedirect", func(t *testing.T) {
		eps, _, _ := newEndpoints(t, loopbackOK)
		target, hits := okServer(t, 200)
		srv := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
		t.Cleanup(srv.Close)
		_, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL})
		var pe *webhook.PingError
		if !errors.As(err, &pe) || pe.Result.Class != webhook.ClassRedirect || hits.Load() != 0 {
			t.Fatalf("redirecting ping: %v, target hits %d", err, hits.Load())
		}
	})
	t.Run("ErrReservedHeader", func(t *testing.T) {
		eps, _, _ := newEndpoints(t, loopbackOK)
		srv, _ := okServer(t, 200)
		for _, h := range []string{"X-Webhook-Signature", "webhook-id", "Webhook-Timestamp", "Content-Type", "Host"} {
			_, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL, Headers: map[string]string{h: "x"}})
			var fe *webhook.FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "headers.") {
				t.Fatalf("header %s: %v", h, err)
			}
		}
	})
	t.Run("ErrUnknownEvent", func(t *testing.T) {
		eps, _, _ := newEndpoints(t, loopbackOK)
		_, _, err := eps.Create(ctx, webhook.NewParams{URL: "http://127.0.0.1:1", Events: []string{"invoice.created", "nope"}})
		var fe *webhook.FieldError
		if !errors.As(err, &fe) || fe.Field != "events[1]" {
			t.Fatalf("unknown event: %v", err)
		}
	})
}

func TestUpdateRotateDelete(t *testing.T) {
	eps, _, _ := newEndpoints(t, loopbackOK)
	srv, _ := okServer(t, 200)
	ctx := context.Background()
	c, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	disabled := webhook.StatusDisabled
	ep, err := eps.Update(ctx, c.ID, webhook.Patch{Status: &disabled})
	if err != nil || ep.Status != disabled || ep.DisabledReason != "manual" {
		t.Fatalf("disable: %v %+v", err, ep)
	}
	if ts, _ := eps.Targets(ctx); len(ts) != 0 {
		t.Fatalf("disabled endpoint is a target: %v", ts)
	}
	bad, _ := okServer(t, 404)
	if _, err := eps.Update(ctx, c.ID, webhook.Patch{URL: &bad.URL}); err == nil {
		t.Fatal("a URL whose ping fails was accepted")
	}
	rot, err := eps.RotateSecret(ctx, c.ID)
	if err != nil || rot.Secret == c.Secret || rot.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotate: %v %+v", err, rot.Endpoint)
	}
	tg, err := eps.Target(ctx, c.ID)
	if err != nil || len(tg.Keys) != 2 {
		t.Fatalf("target after rotation has %d keys, %v", len(tg.Keys), err)
	}
	if err := eps.Delete(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := eps.Get(ctx, c.ID); !errors.Is(err, webhook.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestRotationOverlapEnds(t *testing.T) {
	db, _ := openStore(t)
	now := time.Now()
	var clock atomic.Int64
	eps := webhook.New(db, master, webhook.NewSender(loopbackOK), webhook.Options{
		RotationOverlap: time.Hour,
		Now:             func() time.Time { return now.Add(time.Duration(clock.Load())) },
	})
	srv, _ := okServer(t, 200)
	ctx := context.Background()
	c, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eps.RotateSecret(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	clock.Store(int64(59 * time.Minute))
	if tg, _ := eps.Target(ctx, c.ID); len(tg.Keys) != 2 {
		t.Fatalf("keys inside the overlap: %d", len(tg.Keys))
	}
	clock.Store(int64(61 * time.Minute))
	if tg, _ := eps.Target(ctx, c.ID); len(tg.Keys) != 1 {
		t.Fatalf("keys after the overlap: %d", len(tg.Keys))
	}
}

// Sign is checked against an HMAC computed here from the DESIGN §6 text.
func TestSignBothStyles(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k, err := webhook.ParseKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"event":"ping"}`)
	ts := time.Unix(1700000000, 0)
	h := http.Header{}
	webhook.Sign(h, "evt_1", ts, body, []webhook.Key{k})

	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("1700000000." + string(body)))
	if got, want := h.Get("X-Webhook-Signature"), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("X-Webhook-Signature=%s, want %s", got, want)
	}
	m = hmac.New(sha256.New, bytes.Repeat([]byte{1}, 32))
	m.Write([]byte("evt_1.1700000000." + string(body)))
	if got, want := h.Get("Webhook-Signature"), "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)); got != want {
		t.Fatalf("webhook-signature=%s, want %s", got, want)
	}
	if h.Get("X-Webhook-Timestamp") != "1700000000" || h.Get("Webhook-Timestamp") != "1700000000" || h.Get("Webhook-Id") != "evt_1" {
		t.Fatalf("headers %v", h)
	}
}

// Custom headers go out, but under the signature headers.
func TestSendCustomHeadersCannotOverride(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer srv.Close()
	s := webhook.NewSender(loopbackOK)
	k, _ := webhook.ParseKey(webhook.NewSecret())
	r := s.Send(context.Background(), webhook.Target{URL: srv.URL, Keys: []webhook.Key{k},
		Headers: map[string]string{"Authorization": "Bearer x", "X-Webhook-Signature": "forged"}},
		webhook.Message{ID: "evt_1", Body: []byte("{}"), Time: time.Now()})
	if !r.OK() {
		t.Fatalf("send: %+v", r)
	}
	h := <-got
	if h.Get("Authorization") != "Bearer x" || h.Get("X-Webhook-Signature") == "forged" {
		t.Fatalf("headers %v", h)
	}
}

func TestAppendBodyKeepsDataBytes(t *testing.T) {
	data := []byte(`{"b":2,  "a":1.50}`) // odd spacing and number form survive
	got := webhook.AppendBody(nil, &webhook.Envelope{Event: "invoice.created", EntryID: "evt_X", Time: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC),
		Attempt: 2, MaxAttempts: 50, LastError: `HTTP 500 "x"`}, data)
	want := `{"event":"invoice.created","entry_id":"evt_X","timestamp":"2026-01-02T03:04:05.006Z","attempt":2,"max_attempts":50,"last_error":"HTTP 500 \"x\"","store_id":null,"data":{"b":2,  "a":1.50}}`
	if string(got) != want {
		t.Fatalf("body\n got %s\nwant %s", got, want)
	}
	got = webhook.AppendBody(nil, &webhook.Envelope{Event: "ping", EntryID: "evt_Y", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Attempt: 1, MaxAttempts: 1, StoreID: "shop-12"}, nil)
	want = `{"event":"ping","entry_id":"evt_Y","timestamp":"2026-01-02T03:04:05.000Z","attempt":1,"max_attempts":1,"last_error":null,"store_id":"shop-12","data":{}}`
	if string(got) != want {
		t.Fatalf("body\n got %s\nwant %s", got, want)
	}
}

// With two keys (a rotation's overlap) both signatures of each style are
// sent, the current secret first, each checked against an HMAC computed
// here from the DESIGN §6 text; a long id (beyond any scratch room the
// signer keeps) signs the same way.
func TestSignRotationBothKeys(t *testing.T) {
	cur := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	prev := "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 24))
	kc, err := webhook.ParseKey(cur)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := webhook.ParseKey(prev)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"event":"invoice.created","data":{"n":1}}`)
	ts := time.Unix(1700000123, 0)
	hexMAC := func(key, msg string) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(msg))
		return hex.EncodeToString(m.Sum(nil))
	}
	b64MAC := func(key []byte, msg string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(msg))
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	for _, id := range []string{"evt_01JABCDEFGHJKMNPQRSTVWXYZ0", "evt_" + strings.Repeat("Z", 80)} {
		h := http.Header{}
		webhook.Sign(h, id, ts, body, []webhook.Key{kc, kp})
		want := map[string]string{
			"X-Webhook-Timestamp": "1700000123",
			"X-Webhook-Signature": "sha256=" + hexMAC(cur, "1700000123."+string(body)) + ",sha256=" + hexMAC(prev, "1700000123."+string(body)),
			"Webhook-Id":          id,
			"Webhook-Timestamp":   "1700000123",
			"Webhook-Signature": "v1," + b64MAC(bytes.Repeat([]byte{1}, 32), id+".1700000123."+string(body)) +
				" v1," + b64MAC(bytes.Repeat([]byte{2}, 24), id+".1700000123."+string(body)),
		}
		if len(h) != len(want) {
			t.Fatalf("headers %v, want %v", h, want)
		}
		for k, v := range want {
			if got := h.Values(k); len(got) != 1 || got[0] != v {
				t.Fatalf("%s=%q, want %q", k, got, v)
			}
		}
	}
}
