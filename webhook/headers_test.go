package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posgate/posgate/webhook"
)

// rawFiles returns the bytes of every file in the database's directory
// (the db, its -wal and -shm), read raw.
func rawFiles(t *testing.T, dbPath string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(filepath.Dir(dbPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(dbPath), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func assertNotInFiles(t *testing.T, dbPath string, secrets ...string) {
	t.Helper()
	for name, b := range rawFiles(t, dbPath) {
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds the custom header value %q in plaintext", name, s)
			}
		}
	}
}

// Issue 11 part 7: header names that are, or read as, reserved headers
// (underscores for dashes, any case) are refused, as are names that are
// not RFC 9110 tokens and two names that read the same.
func TestHeaderNamesRefused(t *testing.T) {
	eps, _, _ := newEndpoints(t, loopbackOK)
	srv, pings := okServer(t, 200)
	ctx := context.Background()
	for _, h := range []map[string]string{
		{"webhook_id": "x"}, {"X_Webhook_Signature": "x"}, {"x_WEBHOOK_timestamp": "x"}, {"WEBHOOK-SIGNATURE": "x"},
		{"Webhook_Timestamp": "x"}, {"Content_Type": "x"}, {"content_length": "1"}, {"HOST": "x"},
		{"Transfer_Encoding": "x"}, {"Proxy_Authorization": "x"}, {"user_agent": "x"},
		{"X Y": "x"}, {"X:Y": "x"}, {"Überschrift": "x"}, {"": "x"}, {"X(1)": "x"},
		{"Authorization": "a", "authorization": "b"}, {"X-Token": "a", "x_token": "b"},
	} {
		_, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL, Headers: h})
		var fe *webhook.FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "headers") {
			t.Errorf("headers %v: err=%v, want a FieldError naming headers", h, err)
		}
	}
	if pings.Load() != 0 {
		t.Fatalf("refused endpoints were pinged %d times", pings.Load())
	}
	// Tokens with the other tchars are fine.
	if _, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL, Headers: map[string]string{"X-Api_Key!#$%&'*+.^`|~": "v"}}); err != nil {
		t.Fatalf("a valid token name: %v", err)
	}
}

// Issue 11 part 7: values are masked in every answer after they were
// given, sealed in the store, and still sent for real; a value sent back
// masked keeps the stored one.
func TestHeaderValuesMaskedSealedAndSent(t *testing.T) {
	eps, db, path := newEndpoints(t, loopbackOK)
	got := make(chan http.Header, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	const bearer, token, token2 = "Bearer sEcReT-bearer-4711", "tok-99887766", "tok-rotated-5544"
	c, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL, Headers: map[string]string{"Authorization": bearer, "X-Token": token}})
	if err != nil {
		t.Fatal(err)
	}
	if h := (<-got); h.Get("Authorization") != bearer || h.Get("X-Token") != token {
		t.Fatalf("ping headers %v", h)
	}
	want := map[string]string{"Authorization": "Bearer ****", "X-Token": "****"}
	check := func(what string, h map[string]string) {
		t.Helper()
		if len(h) != len(want) || h["Authorization"] != want["Authorization"] || h["X-Token"] != want["X-Token"] {
			t.Fatalf("%s shows headers %v, want %v", what, h, want)
		}
	}
	check("create", c.Headers)
	ep, _ := eps.Get(ctx, c.ID)
	check("get", ep.Headers)
	list, _ := eps.List(ctx)
	check("list", list[0].Headers)

	// PATCH with the masked Authorization (as GET showed it) and a new
	// X-Token: the first keeps its value, the second changes.
	h := map[string]string{"Authorization": "Bearer ****", "X-Token": token2}
	up, err := eps.Update(ctx, c.ID, webhook.Patch{Headers: &h})
	if err != nil {
		t.Fatal(err)
	}
	check("update", up.Headers)
	tg, err := eps.Target(ctx, c.ID)
	if err != nil || tg.Headers["Authorization"] != bearer || tg.Headers["X-Token"] != token2 {
		t.Fatalf("target headers %v, %v", tg.Headers, err)
	}
	r := eps.Sender().Send(ctx, tg, webhook.Message{ID: webhook.NewEventID(c.CreatedAt), Body: []byte(`{}`), Time: c.CreatedAt})
	if !r.OK() {
		t.Fatalf("send %+v", r)
	}
	if h := (<-got); h.Get("Authorization") != bearer || h.Get("X-Token") != token2 {
		t.Fatalf("delivered headers %v", h)
	}
	assertNotInFiles(t, path, "sEcReT-bearer-4711", token, token2)
	db.Close()
	assertNotInFiles(t, path, "sEcReT-bearer-4711", token, token2)
}

// Issue 11 part 7: a row written before values were sealed (plaintext
// headers, no sealed copy) is sealed at start, and its plaintext leaves
// the database files, not just the row.
func TestSealStoredHeadersScrubsPlaintext(t *testing.T) {
	eps, db, path := newEndpoints(t, loopbackOK)
	srv, _ := okServer(t, 200)
	ctx := context.Background()
	c, _, err := eps.Create(ctx, webhook.NewParams{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	const legacy = "Bearer legacy-plaintext-31337"
	// What an older build wrote: plaintext in headers, nothing sealed.
	if _, err := db.Write.Exec(`UPDATE webhook_endpoints SET headers = '{"Authorization":"`+legacy+`"}', headers_sealed = NULL WHERE id = ?`, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil { // into the main file too
		t.Fatal(err)
	}
	if ep, _ := eps.Get(ctx, c.ID); ep.Headers["Authorization"] != "Bearer ****" {
		t.Fatalf("an unsealed row shows %v", ep.Headers)
	}
	n, err := eps.SealStoredHeaders(ctx)
	if err != nil || n != 1 {
		t.Fatalf("SealStoredHeaders=%d, %v", n, err)
	}
	if n, err := eps.SealStoredHeaders(ctx); err != nil || n != 0 {
		t.Fatalf("second run sealed %d, %v", n, err)
	}
	tg, err := eps.Target(ctx, c.ID)
	if err != nil || tg.Headers["Authorization"] != legacy {
		t.Fatalf("target after sealing: %v, %v", tg.Headers, err)
	}
	// Read raw while posgate runs (a copy of a live data directory) and
	// after it closed the store.
	assertNotInFiles(t, path, "legacy-plaintext-31337")
	db.Close()
	assertNotInFiles(t, path, "legacy-plaintext-31337")
}

// Issue 11 part 12: "HTTPS://" is https. Today the validator accepted it
// and the sender refused it with "url must use https".
func TestSchemeCaseInsensitiveEverywhere(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	so := webhook.SenderOptions{AllowPrivate: true, TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()}
	so.TLSConfig.MinVersion = tls.VersionTLS12
	eps, _, _ := newEndpoints(t, so)
	ctx := context.Background()
	upper := "HTTPS://" + strings.TrimPrefix(srv.URL, "https://") + "/hook"
	c, _, err := eps.Create(ctx, webhook.NewParams{URL: upper})
	if err != nil {
		t.Fatalf("create %s: %v", upper, err)
	}
	tg, _ := eps.Target(ctx, c.ID)
	if r := eps.Sender().Send(ctx, tg, webhook.Message{ID: "evt_1", Body: []byte("{}"), Time: c.CreatedAt}); !r.OK() {
		t.Fatalf("send to %s: %+v", upper, r)
	}
	// And plain http in any case is refused by both, with the same error.
	for _, u := range []string{"HTTP://127.0.0.1:1/", "Http://127.0.0.1:1/"} {
		_, _, err := eps.Create(ctx, webhook.NewParams{URL: u})
		if !errors.Is(err, webhook.ErrHTTPNotAllowed) {
			t.Fatalf("create %s: %v, want ErrHTTPNotAllowed", u, err)
		}
		r := eps.Sender().Send(ctx, webhook.Target{URL: u, Keys: tg.Keys}, webhook.Message{ID: "evt_1", Body: []byte("{}")})
		if r.Class != webhook.ClassBlocked || r.Err != webhook.ErrHTTPNotAllowed.Error() {
			t.Fatalf("send %s: %+v", u, r)
		}
	}
}
