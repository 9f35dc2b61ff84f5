package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

// Every body the relay sends is webhook.AppendBody of its envelope and the
// event's stored bytes, byte for byte, however the claim built it: the
// envelope's head written into room SQLite left in front of the data
// (outbox.claimReader), or a new slice when the head is longer than that
// room (a retry carrying a long last error). Many events are claimed at
// once, so a body sharing memory with the next row's would show here as
// another event's bytes. Empty data goes out as {}.
func TestClaimedBodiesAreAppendBody(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	// The first attempt at the "redirected" event is answered with a
	// redirect to a long URL: its retry carries a last error of ~430
	// bytes, longer than the room.
	location := "https://example.invalid/" + strings.Repeat("r", 400)
	var (
		mu     sync.Mutex
		bodies = map[string][][]byte{} // entry_id -> bodies in order
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env struct {
			Event   string `json:"event"`
			EntryID string `json:"entry_id"`
		}
		_ = json.Unmarshal(body, &env)
		if env.Event == "ping" {
			return
		}
		mu.Lock()
		bodies[env.EntryID] = append(bodies[env.EntryID], body)
		first := len(bodies[env.EntryID]) == 1
		mu.Unlock()
		if env.Event == "invoice.failed" && first {
			w.Header().Set("Location", location)
			w.WriteHeader(http.StatusFound)
		}
	}))
	t.Cleanup(srv.Close)
	e.endpoint(srv.URL)

	at := time.Date(2026, 12, 6, 10, 11, 12, 345e6, time.UTC)
	type sent struct {
		typ  string
		data string
	}
	events := map[string]sent{}
	enqueue := func(typ, data string) {
		t.Helper()
		id, err := e.relay.Enqueue(context.Background(), outbox.Event{Type: typ, Data: json.RawMessage(data), Time: at})
		if err != nil {
			t.Fatal(err)
		}
		events[id] = sent{typ, data}
	}
	for i := range 40 {
		// Distinct lengths and bytes, one not UTF-8, one with an escaped NUL.
		enqueue("invoice.created", fmt.Sprintf("{\"i\":%d,\"pad\":\"%s\",\"raw\":\"\xff\\u0000\"}", i, strings.Repeat("x", i*37)))
	}
	enqueue("invoice.created", "")
	enqueue("invoice.failed", `{"why":"redirected"}`)
	e.run()

	waitFor(t, 10*time.Second, "every event delivered, the redirected one twice", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, b := range bodies {
			n += len(b)
		}
		return n == len(events)+1
	})
	mu.Lock()
	defer mu.Unlock()
	for id, ev := range events {
		got := bodies[id]
		data := ev.data
		if data == "" {
			data = "{}"
		}
		for n, body := range got {
			env := webhook.Envelope{Event: ev.typ, EntryID: id, Time: at, Attempt: n + 1, MaxAttempts: fastOptions().MaxAttempts}
			if n > 0 {
				env.LastError = fmt.Sprintf("HTTP 302 redirect to %q, not followed", location)
			}
			if want := webhook.AppendBody(nil, &env, []byte(data)); string(body) != string(want) {
				t.Errorf("event %s attempt %d:\n got %q\nwant %q", id, n+1, body, want)
			}
		}
		if want := 1 + btoi(ev.typ == "invoice.failed"); len(got) != want {
			t.Errorf("event %s (%s) delivered %d times, want %d", id, ev.typ, len(got), want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
