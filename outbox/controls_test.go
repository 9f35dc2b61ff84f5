package outbox_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

// eventNo reads {"i":n} from a hit's data.
func eventNo(h hit) int {
	var d struct{ I int }
	_ = json.Unmarshal(h.Data, &d)
	return d.I
}

func (e *env) endpointWith(p webhook.NewParams) webhook.Created {
	e.t.Helper()
	c, _, err := e.hooks.Create(context.Background(), p)
	if err != nil {
		e.t.Fatalf("create endpoint %s: %v", p.URL, err)
	}
	return c
}

// Issue 18 part 3: a per-endpoint rate limit paces requests to that
// endpoint only, against a real receiver.
func TestRateLimitPerEndpoint(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	limited, free := newReceiver(t, nil), newReceiver(t, nil)
	e.endpointWith(webhook.NewParams{URL: limited.URL, RateLimit: webhook.RateLimit{PerSecond: 20, Burst: 2}})
	e.endpoint(free.URL)
	const n = 24
	for i := range n {
		e.enqueue("invoice.created", `{"i":`+itoa(i)+`}`)
	}
	e.run()
	waitFor(t, 10*time.Second, "both receivers", func() bool { return len(limited.deliveries()) == n && len(free.deliveries()) == n })
	lh, fh := limited.deliveries(), free.deliveries()
	span := lh[n-1].At.Sub(lh[0].At)
	// 2 at once (burst), then one every 50 ms: at least 22 × 50 ms.
	if min := time.Duration(n-2) * 50 * time.Millisecond * 9 / 10; span < min {
		t.Fatalf("%d requests within %v at 20/s burst 2; want at least %v", n, span, min)
	}
	// Never more than burst + rate × window in any window.
	for i := range lh {
		in := 0
		for _, h := range lh[i:] {
			if h.At.Sub(lh[i].At) < 500*time.Millisecond {
				in++
			}
		}
		if in > 2+10+1 {
			t.Fatalf("%d requests within 500 ms at 20/s burst 2", in)
		}
	}
	if !fh[n-1].At.Before(lh[n-1].At) {
		t.Fatalf("the unlimited endpoint finished at %v, after the limited one (%v)", fh[n-1].At, lh[n-1].At)
	}
}

// fifoReceiver answers per event number from fails (how many times each
// event fails first; -1 always) and records whether a request ever came
// for an event before every earlier one had succeeded, and the most
// requests in flight at once.
type fifoReceiver struct {
	*receiver
	mu        sync.Mutex
	fails     map[int]int
	ok        []int
	outOfTurn []int
	inflight  atomic.Int32
	most      atomic.Int32
}

func newFIFOReceiver(t *testing.T, fails map[int]int, dead map[int]bool) *fifoReceiver {
	f := &fifoReceiver{fails: fails}
	f.receiver = newReceiver(t, func(_ int, h hit) int {
		n := f.inflight.Add(1)
		defer f.inflight.Add(-1)
		for m := f.most.Load(); n > m && !f.most.CompareAndSwap(m, n); m = f.most.Load() {
		}
		time.Sleep(2 * time.Millisecond) // overlap, were there any
		i := eventNo(h)
		f.mu.Lock()
		defer f.mu.Unlock()
		for j := 0; j < i; j++ {
			if !slices.Contains(f.ok, j) && !dead[j] {
				f.outOfTurn = append(f.outOfTurn, i)
			}
		}
		if f.fails[i] != 0 {
			if f.fails[i] > 0 {
				f.fails[i]--
			}
			return http.StatusInternalServerError
		}
		f.ok = append(f.ok, i)
		return http.StatusOK
	})
	return f
}

// Issue 18 part 3: with ordering "fifo" the next event waits for the
// previous one's success: one request at a time, in event order, retries
// included.
func TestFIFOOrdering(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	rcv := newFIFOReceiver(t, map[int]int{0: 2, 3: 1, 7: 2}, nil)
	e.endpointWith(webhook.NewParams{URL: rcv.URL, Ordering: webhook.OrderingFIFO})
	const n = 10
	for i := range n {
		e.enqueue("invoice.created", `{"i":`+itoa(i)+`}`)
	}
	e.run()
	waitFor(t, 10*time.Second, "all delivered", func() bool { rcv.mu.Lock(); defer rcv.mu.Unlock(); return len(rcv.ok) == n })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(rcv.ok, want) {
		t.Fatalf("successes in order %v, want %v", rcv.ok, want)
	}
	if len(rcv.outOfTurn) > 0 || rcv.most.Load() != 1 {
		t.Fatalf("requests out of turn for %v; at most %d in flight", rcv.outOfTurn, rcv.most.Load())
	}
	if got := len(rcv.deliveries()); got != n+5 {
		t.Fatalf("%d requests, want %d (10 events, 5 failures)", got, n+5)
	}
}

// Issue 18 part 3, documented rule: a FIFO event that goes dead leaves
// the queue (it is kept as dead for a manual retry or recover) and the
// next event is sent; nothing after it waits forever.
func TestFIFODeadEventLeavesTheQueue(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 2
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	rcv := newFIFOReceiver(t, map[int]int{1: -1}, map[int]bool{1: true})
	ep := e.endpointWith(webhook.NewParams{URL: rcv.URL, Ordering: webhook.OrderingFIFO})
	for i := range 5 {
		e.enqueue("invoice.created", `{"i":`+itoa(i)+`}`)
	}
	e.run()
	ctx := context.Background()
	waitFor(t, 10*time.Second, "the rest delivered", func() bool { c, _ := e.relay.Counts(ctx); return c[ep.ID] == outbox.Counts{Dead: 1} })
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if want := []int{0, 2, 3, 4}; !slices.Equal(rcv.ok, want) || len(rcv.outOfTurn) > 0 {
		t.Fatalf("successes %v (want %v), out of turn %v", rcv.ok, want, rcv.outOfTurn)
	}
	var order []int
	for _, h := range rcv.deliveries() {
		order = append(order, eventNo(h))
	}
	if want := []int{0, 1, 1, 2, 3, 4}; !slices.Equal(order, want) {
		t.Fatalf("requests for events %v, want %v", order, want)
	}
}

// opsWatcher is an endpoint subscribed to the operational events only.
func opsWatcher(t *testing.T, e *env) *receiver {
	w := newReceiver(t, nil)
	e.endpoint(w.URL, webhook.EventDeliveryExhausted, webhook.EventEndpointDisabled, webhook.EventEndpointRecovered)
	return w
}

func find(hs []hit, event string) (hit, bool) {
	for _, h := range hs {
		if h.Event == event {
			return h, true
		}
	}
	return hit{}, false
}

// Issue 18 parts 3 and 5: the circuit breaker, on a simulated clock.
// An endpoint failing for 4 days stays active; past 5 days its next
// failure disables it and endpoint.disabled (with the store id) goes to
// the watchers; re-enabled and answering again, it sends
// endpoint.recovered.
func TestCircuitBreakerSimulatedClock(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	opts := fastOptions()
	opts.MaxAttempts = 1000
	opts.Now = now
	e := newEnv(t, "", opts, webhook.SenderOptions{}, webhook.Options{StoreID: "shop-12", Now: now})
	var healthy atomic.Bool
	rcv := newReceiver(t, func(int, hit) int {
		if healthy.Load() {
			return 200
		}
		return 500
	})
	watch := opsWatcher(t, e)
	ep := e.endpoint(rcv.URL, "invoice.created")
	e.run()
	e.enqueue("invoice.created", `{}`)
	ctx := context.Background()
	get := func() webhook.Endpoint { g, _ := e.hooks.Get(ctx, ep.ID); return g }
	waitFor(t, 5*time.Second, "failing", func() bool { return len(rcv.deliveries()) >= 2 && get().FailingSince != nil })
	since := *get().FailingSince

	offset.Store(int64(4 * 24 * time.Hour))
	seen := len(rcv.deliveries())
	waitFor(t, 5*time.Second, "failures on day 4", func() bool { return len(rcv.deliveries()) >= seen+3 })
	if g := get(); g.Status != webhook.StatusActive || !g.FailingSince.Equal(since) {
		t.Fatalf("after 4 days failing: %s, failing since %v (was %v)", g.Status, g.FailingSince, since)
	}

	offset.Store(int64(5*24*time.Hour + time.Minute))
	waitFor(t, 5*time.Second, "disabled", func() bool { return get().Status == webhook.StatusDisabled })
	if g := get(); g.DisabledReason != "failing" {
		t.Fatalf("disabled_reason %q", g.DisabledReason)
	}
	waitFor(t, 5*time.Second, "endpoint.disabled to the watcher", func() bool { _, ok := find(watch.deliveries(), webhook.EventEndpointDisabled); return ok })
	h, _ := find(watch.deliveries(), webhook.EventEndpointDisabled)
	var d struct {
		EndpointID   string    `json:"endpoint_id"`
		Reason       string    `json:"reason"`
		FailingSince time.Time `json:"failing_since"`
	}
	if err := json.Unmarshal(h.Data, &d); err != nil || d.EndpointID != ep.ID || d.Reason != "failing" || !d.FailingSince.Equal(since) {
		t.Fatalf("endpoint.disabled data %s (%v)", h.Data, err)
	}
	if h.StoreID == nil || *h.StoreID != "shop-12" {
		t.Fatalf("store_id %v", h.StoreID)
	}
	if _, ok := find(rcv.all(), webhook.EventEndpointDisabled); ok {
		t.Fatal("the disabled endpoint was sent its own endpoint.disabled")
	}
	evs, _, _ := e.relay.Events(ctx, outbox.EventFilter{Type: webhook.EventEndpointDisabled})
	if len(evs) != 1 {
		t.Fatalf("%d endpoint.disabled events in the log, want 1", len(evs))
	}

	// An admin re-enables it; it answers again.
	healthy.Store(true)
	active := webhook.StatusActive
	if g, err := e.hooks.Update(ctx, ep.ID, webhook.Patch{Status: &active}); err != nil || g.FailingSince != nil {
		t.Fatalf("re-enable: %v, failing since %v", err, g.FailingSince)
	}
	e.relay.Notify()
	waitFor(t, 5*time.Second, "endpoint.recovered", func() bool { _, ok := find(watch.deliveries(), webhook.EventEndpointRecovered); return ok })
	if g := get(); g.Status != webhook.StatusActive || g.FailingSince != nil {
		t.Fatalf("after recovery: %s, failing since %v", g.Status, g.FailingSince)
	}
}

// Breaker off (DisableAfter < 0): never disabled.
func TestCircuitBreakerOff(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	opts := fastOptions()
	opts.MaxAttempts, opts.Now, opts.DisableAfter = 1000, now, -1
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	rcv := newReceiver(t, func(int, hit) int { return 500 })
	ep := e.endpoint(rcv.URL)
	e.run()
	e.enqueue("invoice.created", `{}`)
	waitFor(t, 5*time.Second, "failures", func() bool { return len(rcv.deliveries()) >= 2 })
	offset.Store(int64(30 * 24 * time.Hour))
	seen := len(rcv.deliveries())
	waitFor(t, 5*time.Second, "failures a month later", func() bool { return len(rcv.deliveries()) >= seen+3 })
	if g, _ := e.hooks.Get(context.Background(), ep.ID); g.Status != webhook.StatusActive {
		t.Fatalf("status %s with the breaker off", g.Status)
	}
}

// Issue 18 part 4: delivery.exhausted for a dead delivery, endpoint.disabled
// on a 410, endpoint.recovered at the next success; none is sent to the
// endpoint it is about.
func TestOperationalEvents(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 2
	e := newEnv(t, "", opts, webhook.SenderOptions{}, webhook.Options{StoreID: "shop-12"})
	var status atomic.Int32
	status.Store(500)
	rcv := newReceiver(t, func(int, hit) int { return int(status.Load()) })
	watch := opsWatcher(t, e)
	ep := e.endpoint(rcv.URL) // every event type, operational ones included
	e.run()
	id := e.enqueue("invoice.created", `{"i":1}`)
	waitFor(t, 5*time.Second, "delivery.exhausted", func() bool { _, ok := find(watch.deliveries(), webhook.EventDeliveryExhausted); return ok })
	h, _ := find(watch.deliveries(), webhook.EventDeliveryExhausted)
	var d struct {
		DeliveryID string `json:"delivery_id"`
		EndpointID string `json:"endpoint_id"`
		EventID    string `json:"event_id"`
		EventType  string `json:"event_type"`
		Attempts   int    `json:"attempts"`
		LastStatus int    `json:"last_status"`
		LastError  string `json:"last_error"`
	}
	if err := json.Unmarshal(h.Data, &d); err != nil || d.EndpointID != ep.ID || d.EventID != id || d.EventType != "invoice.created" ||
		d.Attempts != 2 || d.LastStatus != 500 || d.LastError != "HTTP 500" || d.DeliveryID == "" {
		t.Fatalf("delivery.exhausted data %s (%v)", h.Data, err)
	}
	if h.StoreID == nil || *h.StoreID != "shop-12" || h.Header.Get("Webhook-Id") != h.EntryID {
		t.Fatalf("envelope store_id %v, webhook-id %q / %q", h.StoreID, h.Header.Get("Webhook-Id"), h.EntryID)
	}

	status.Store(http.StatusGone)
	e.enqueue("invoice.created", `{"i":2}`)
	waitFor(t, 5*time.Second, "endpoint.disabled", func() bool { _, ok := find(watch.deliveries(), webhook.EventEndpointDisabled); return ok })
	h, _ = find(watch.deliveries(), webhook.EventEndpointDisabled)
	var dd struct{ EndpointID, Reason string }
	if err := json.Unmarshal(h.Data, &dd); err != nil || dd.Reason != "gone" {
		t.Fatalf("endpoint.disabled data %s", h.Data)
	}

	status.Store(200)
	active := webhook.StatusActive
	if _, err := e.hooks.Update(context.Background(), ep.ID, webhook.Patch{Status: &active}); err != nil {
		t.Fatal(err)
	}
	e.enqueue("invoice.created", `{"i":3}`)
	waitFor(t, 5*time.Second, "endpoint.recovered", func() bool { _, ok := find(watch.deliveries(), webhook.EventEndpointRecovered); return ok })
	for _, h := range rcv.all() {
		if h.Event == webhook.EventDeliveryExhausted || h.Event == webhook.EventEndpointDisabled || h.Event == webhook.EventEndpointRecovered {
			t.Fatalf("the endpoint was sent an operational event about itself: %s", h.Body)
		}
	}
	// i=1 and i=2 (410) went dead, one disable, one recovery; a later
	// success raises no second endpoint.recovered.
	e.enqueue("invoice.created", `{"i":4}`)
	waitFor(t, 5*time.Second, "i=4", func() bool {
		hs := rcv.deliveries()
		return len(hs) > 0 && eventNo(hs[len(hs)-1]) == 4
	})
	time.Sleep(100 * time.Millisecond)
	for typ, want := range map[string]int{webhook.EventDeliveryExhausted: 2, webhook.EventEndpointDisabled: 1, webhook.EventEndpointRecovered: 1} {
		if evs, _, _ := e.relay.Events(context.Background(), outbox.EventFilter{Type: typ}); len(evs) != want {
			t.Fatalf("%d %s events, want %d", len(evs), typ, want)
		}
	}
}

// Two failing endpoints that take every event type do not report each
// other's reports without end: a dead delivery of an operational event
// raises none.
func TestOperationalEventsDoNotCascade(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 1
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	fail := func(int, hit) int { return 500 }
	r1, r2 := newReceiver(t, fail), newReceiver(t, fail)
	ep1, ep2 := e.endpoint(r1.URL), e.endpoint(r2.URL)
	e.run()
	e.enqueue("invoice.created", `{}`)
	ctx := context.Background()
	waitFor(t, 5*time.Second, "both dead twice", func() bool {
		c, _ := e.relay.Counts(ctx)
		return c[ep1.ID].Dead == 2 && c[ep2.ID].Dead == 2
	})
	time.Sleep(200 * time.Millisecond)
	evs, _, _ := e.relay.Events(ctx, outbox.EventFilter{})
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3 (the invoice and one delivery.exhausted per endpoint)", len(evs))
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// A lane waiting on a slow rate limit lets go as soon as its endpoint is
// disabled: re-enabling it does not wait for the next token.
func TestRateLimitedLaneStopsAtOnce(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	rcv := newReceiver(t, nil)
	ep := e.endpointWith(webhook.NewParams{URL: rcv.URL, RateLimit: webhook.RateLimit{PerSecond: 0.01, Burst: 1}})
	for i := range 3 {
		e.enqueue("invoice.created", `{"i":`+itoa(i)+`}`)
	}
	e.run()
	waitFor(t, 5*time.Second, "the burst", func() bool { return len(rcv.deliveries()) == 1 })
	ctx := context.Background()
	disabled, active := webhook.StatusDisabled, webhook.StatusActive
	if _, err := e.hooks.Update(ctx, ep.ID, webhook.Patch{Status: &disabled}); err != nil {
		t.Fatal(err)
	}
	// Raise the limit and re-enable: the new lane starts as soon as the
	// old one's waiting workers have let go, not 100 s later.
	fast := webhook.RateLimit{PerSecond: 1000}
	if _, err := e.hooks.Update(ctx, ep.ID, webhook.Patch{Status: &active, RateLimit: &fast}); err != nil {
		t.Fatal(err)
	}
	e.relay.Notify()
	waitFor(t, 5*time.Second, "the rest after re-enabling", func() bool { return len(rcv.deliveries()) == 3 })
}

// Raising an endpoint's rate limit applies to workers already waiting
// under the old one.
func TestRateLimitRaisedWhileWaiting(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	rcv := newReceiver(t, nil)
	ep := e.endpointWith(webhook.NewParams{URL: rcv.URL, RateLimit: webhook.RateLimit{PerSecond: 0.01, Burst: 1}})
	for i := range 3 {
		e.enqueue("invoice.created", `{"i":`+itoa(i)+`}`)
	}
	e.run()
	waitFor(t, 5*time.Second, "the burst", func() bool { return len(rcv.deliveries()) == 1 })
	time.Sleep(50 * time.Millisecond) // the other two wait for tokens 100 s away
	fast := webhook.RateLimit{PerSecond: 1000}
	if _, err := e.hooks.Update(context.Background(), ep.ID, webhook.Patch{RateLimit: &fast}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the rest under the new limit", func() bool { return len(rcv.deliveries()) == 3 })
}
