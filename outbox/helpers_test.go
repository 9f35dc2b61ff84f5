package outbox_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// env is a store, endpoints and a relay over a TempDir database.
type env struct {
	t     testing.TB
	db    *store.DB
	hooks *webhook.Endpoints
	relay *outbox.Relay
	path  string
}

var testMaster = func() *masterkey.Key {
	k, err := masterkey.New(make([]byte, masterkey.Size))
	if err != nil {
		panic(err)
	}
	return k
}()

// fastOptions shortens every wait so tests run in milliseconds.
func fastOptions() outbox.Options {
	return outbox.Options{
		Schedule:      []time.Duration{20 * time.Millisecond},
		Jitter:        -1,
		MaxAttempts:   5,
		Poll:          10 * time.Millisecond,
		ProbeInterval: 50 * time.Millisecond,
	}
}

func newEnv(t testing.TB, path string, opts outbox.Options, sopts webhook.SenderOptions, wopts ...webhook.Options) *env {
	t.Helper()
	return newEnvStore(t, path, store.Options{}, opts, sopts, wopts...)
}

// newEnvStore is newEnv with the store opened with stopts.
func newEnvStore(t testing.TB, path string, stopts store.Options, opts outbox.Options, sopts webhook.SenderOptions, wopts ...webhook.Options) *env {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "posgate.db")
	}
	db, err := store.Open(context.Background(), path, stopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sopts.AllowHTTP, sopts.AllowPrivate = true, true
	if sopts.Timeout == 0 {
		sopts.Timeout = 2 * time.Second
	}
	var wo webhook.Options
	if len(wopts) > 0 {
		wo = wopts[0]
	}
	hooks := webhook.New(db, testMaster, webhook.NewSender(sopts), wo)
	log := zerolog.Nop()
	if tt, ok := t.(*testing.T); ok && testing.Verbose() {
		log = zerolog.New(zerolog.NewTestWriter(tt)).Level(zerolog.InfoLevel)
	}
	return &env{t: t, db: db, hooks: hooks, relay: outbox.NewRelay(db, hooks, log, opts), path: path}
}

// run starts the relay and stops it (waiting for Run to return) at cleanup.
func (e *env) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.relay.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					e.t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				e.t.Errorf("Run did not return within 15 s of cancel")
			}
		})
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) endpoint(url string, events ...string) webhook.Created {
	e.t.Helper()
	c, _, err := e.hooks.Create(context.Background(), webhook.NewParams{URL: url, Events: events})
	if err != nil {
		e.t.Fatalf("create endpoint %s: %v", url, err)
	}
	return c
}

func (e *env) enqueue(typ string, data string) string {
	e.t.Helper()
	id, err := e.relay.Enqueue(context.Background(), outbox.Event{Type: typ, Data: json.RawMessage(data)})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hit is one request a receiver saw.
type hit struct {
	At          time.Time
	Header      http.Header
	Body        []byte
	EntryID     string
	Attempt     int
	MaxAttempts int
	Event       string
	StoreID     *string
	Data        json.RawMessage
}

// receiver is a loopback HTTP server that records requests and answers
// with respond(n) for its n-th request (0-based).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	hits    []hit
	n       int // requests other than pings
	respond func(n int, h hit) int
}

func newReceiver(t testing.TB, respond func(n int, h hit) int) *receiver {
	r := &receiver{respond: respond}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var env struct {
			EntryID     string          `json:"entry_id"`
			Attempt     int             `json:"attempt"`
			MaxAttempts int             `json:"max_attempts"`
			Event       string          `json:"event"`
			StoreID     *string         `json:"store_id"`
			Data        json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(body, &env)
		h := hit{At: time.Now(), Header: req.Header.Clone(), Body: body, EntryID: env.EntryID, Attempt: env.Attempt,
			MaxAttempts: env.MaxAttempts, Event: env.Event, StoreID: env.StoreID, Data: env.Data}
		r.mu.Lock()
		n := r.n
		if env.Event != "ping" {
			r.n++
		}
		r.hits = append(r.hits, h)
		r.mu.Unlock()
		status := http.StatusOK
		if r.respond != nil && env.Event != "ping" {
			status = r.respond(n, h)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

// deliveries returns the non-ping hits.
func (r *receiver) deliveries() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hit
	for _, h := range r.hits {
		if !json.Valid(h.Body) || !isPing(h.Body) {
			out = append(out, h)
		}
	}
	return out
}

func isPing(b []byte) bool {
	var v struct {
		Event string `json:"event"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Event == "ping"
}

// all returns every hit, pings included.
func (r *receiver) all() []hit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hit(nil), r.hits...)
}
