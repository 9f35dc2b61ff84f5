package outbox_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

// chaos answers each request with a random outcome drawn from a seeded
// source, and remembers which (endpoint, entry_id) pairs got a 2xx that
// the relay could have seen.
type chaos struct {
	mu   sync.Mutex
	rnd  *rand.Rand
	ok   map[string]bool // endpoint + entry_id
	down bool            // when false, always 200
}

func (c *chaos) handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("Webhook-Id")
		c.mu.Lock()
		roll := c.rnd.IntN(100)
		chaotic := c.down
		c.mu.Unlock()
		if !chaotic {
			roll = 0
		}
		switch {
		case roll < 30:
			c.mu.Lock()
			c.ok[name+"/"+id] = true
			c.mu.Unlock()
			w.WriteHeader(200)
		case roll < 50:
			w.WriteHeader(500)
		case roll < 60:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(503)
		case roll < 70:
			w.Header().Set("Location", "http://127.0.0.1:1/")
			w.WriteHeader(307)
		case roll < 80:
			w.WriteHeader(404)
		case roll < 92:
			// Reset the connection without an answer.
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			w.WriteHeader(500)
		default:
			// No answer within the sender's timeout: wait until the
			// sender gives up and drops the connection, then answer
			// nothing. Sleeping past the timeout and then answering 200
			// made the property depend on the scheduler: under load the
			// sender's timer fires late, the late 200 arrives first and
			// is (rightly) recorded as delivered, though this receiver
			// had not counted it. The fallback only bounds the handler;
			// a 2xx it sends is counted like any other.
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
				c.mu.Lock()
				c.ok[name+"/"+id] = true
				c.mu.Unlock()
				w.WriteHeader(200)
			}
		}
	})
}

// Whatever the receivers do, no event is lost: every (event, endpoint)
// pair ends delivered, having been answered 2xx, or dead with every
// attempt recorded; a manual retry then delivers every dead one; the
// counters equal the rows.
func TestRandomFailuresNeverLoseAnEvent(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			opts := fastOptions()
			opts.Schedule = []time.Duration{time.Millisecond, 5 * time.Millisecond}
			opts.MaxAttempts = 4
			e := newEnv(t, "", opts, webhook.SenderOptions{Timeout: 300 * time.Millisecond})
			c := &chaos{rnd: rand.New(rand.NewPCG(seed, 7)), ok: map[string]bool{}}
			rA, rB := newReceiver(t, nil), newReceiver(t, nil)
			rA.Config.Handler, rB.Config.Handler = c.handler("A"), c.handler("B")
			// A takes the two event types sent (not the operational events
			// that B's dead deliveries raise).
			epA, epB := e.endpoint(rA.URL, "invoice.created", "payment.completed"), e.endpoint(rB.URL, "invoice.created")
			c.mu.Lock()
			c.down = true
			c.mu.Unlock()
			e.run()
			const events = 40
			types := []string{"invoice.created", "payment.completed"}
			for i := range events {
				e.enqueue(types[i%2], fmt.Sprintf(`{"i":%d}`, i))
			}
			ctx := context.Background()
			waitFor(t, 30*time.Second, "every delivery to finish", func() bool {
				n, _ := e.relay.Counts(ctx)
				return n[epA.ID].Pending == 0 && n[epB.ID].Pending == 0
			})
			checkCounters(t, e)

			want := map[string]int{epA.ID: events, epB.ID: events / 2}
			name := map[string]string{epA.ID: "A", epB.ID: "B"}
			var dead []string
			for ep, n := range want {
				ds, _, err := e.relay.Deliveries(ctx, outbox.DeliveryFilter{EndpointID: ep, Limit: 1000})
				if err != nil {
					t.Fatal(err)
				}
				if len(ds) != n {
					t.Fatalf("endpoint %s has %d deliveries, want %d", name[ep], len(ds), n)
				}
				for _, d := range ds {
					switch d.State {
					case outbox.StateDelivered:
						c.mu.Lock()
						ok := c.ok[name[ep]+"/"+d.EventID]
						c.mu.Unlock()
						if !ok {
							t.Fatalf("%s marked delivered but the receiver never answered 2xx", d.ID)
						}
					case outbox.StateDead:
						if d.AttemptCount != opts.MaxAttempts || len(d.Attempts) != opts.MaxAttempts {
							t.Fatalf("dead %s with %d attempts, %d recorded", d.ID, d.AttemptCount, len(d.Attempts))
						}
						dead = append(dead, d.ID)
					default:
						t.Fatalf("%s is %s after the drain", d.ID, d.State)
					}
				}
			}
			c.mu.Lock()
			c.down = false
			c.mu.Unlock()
			for _, id := range dead {
				retryUntilDelivered(t, e, id)
			}
			checkCounters(t, e)
			t.Logf("seed %d: %d dead, retried by hand", seed, len(dead))
		})
	}
}

// retryUntilDelivered retries dead delivery id by hand, as an operator
// would, against a receiver that answers 200 at once: the retry delivers
// it. On a loaded machine the attempt may outlive the sender's 300 ms
// timeout all the same; that attempt is recorded as a timeout, the
// delivery stays dead and the operator retries again. Any other outcome
// fails, and so do ten timeouts in a row.
func retryUntilDelivered(t *testing.T, e *env, id string) {
	t.Helper()
	for try := 1; ; try++ {
		d, err := e.relay.Retry(context.Background(), id)
		if err == nil && d.State == outbox.StateDelivered {
			return
		}
		if err != nil || d.State != outbox.StateDead || len(d.Attempts) == 0 ||
			d.Attempts[len(d.Attempts)-1].ErrorClass != webhook.ClassTimeout || try == 10 {
			t.Fatalf("manual retry %d of %s: %v, %+v", try, id, err, d)
		}
	}
}

// checkCounters compares the trigger-kept counters with COUNT(*).
func checkCounters(t *testing.T, e *env) {
	t.Helper()
	rows, err := e.db.Read.Query(`SELECT c.endpoint_id, c.pending, c.dead,
		(SELECT COUNT(*) FROM outbox_deliveries d WHERE d.endpoint_id = c.endpoint_id AND d.state = 0),
		(SELECT COUNT(*) FROM outbox_deliveries d WHERE d.endpoint_id = c.endpoint_id AND d.state = 3)
		FROM outbox_counters c`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id                 string
			p, d, wantP, wantD int
		)
		if err := rows.Scan(&id, &p, &d, &wantP, &wantD); err != nil {
			t.Fatal(err)
		}
		if p != wantP || d != wantD {
			t.Fatalf("counters of %s: pending %d dead %d, rows say %d and %d", id, p, d, wantP, wantD)
		}
	}
}
