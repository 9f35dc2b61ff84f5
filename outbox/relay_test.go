package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

func TestSignaturesTwoEndpointsAndRotation(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	r1, r2 := newReceiver(t, nil), newReceiver(t, nil)
	ep1, ep2 := e.endpoint(r1.URL), e.endpoint(r2.URL)
	e.run()

	id := e.enqueue("webhook.test", `{"hello":"world"}`)
	waitFor(t, 5*time.Second, "both endpoints", func() bool { return len(r1.deliveries()) == 1 && len(r2.deliveries()) == 1 })
	for _, c := range []struct {
		r      *receiver
		secret string
	}{{r1, ep1.Secret}, {r2, ep2.Secret}} {
		h := c.r.deliveries()[0]
		if err := verify(h.Header, h.Body, c.secret); err != nil {
			t.Fatalf("before rotation: %v", err)
		}
		if got := h.Header.Get("Webhook-Id"); got != id || h.EntryID != id {
			t.Fatalf("webhook-id=%q entry_id=%q, want %q", got, h.EntryID, id)
		}
		if n := len(strings.Split(h.Header.Get("X-Webhook-Signature"), ",")); n != 1 {
			t.Fatalf("%d signatures before rotation, want 1", n)
		}
	}

	rot, err := e.hooks.RotateSecret(context.Background(), ep1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rot.Secret == ep1.Secret || !strings.HasPrefix(rot.Secret, "whsec_") {
		t.Fatalf("rotated secret %q", rot.Secret)
	}
	e.enqueue("webhook.test", `{"after":"rotation"}`)
	waitFor(t, 5*time.Second, "second round", func() bool { return len(r1.deliveries()) == 2 && len(r2.deliveries()) == 2 })
	h := r1.deliveries()[1]
	for _, secret := range []string{rot.Secret, ep1.Secret} {
		if err := verify(h.Header, h.Body, secret); err != nil {
			t.Fatalf("during overlap: %v", err)
		}
	}
	if got := h.Header.Get("X-Webhook-Signature"); len(strings.Split(got, ",")) != 2 {
		t.Fatalf("X-Webhook-Signature=%q, want two during the overlap", got)
	}
	if got := h.Header.Get("Webhook-Signature"); len(strings.Fields(got)) != 2 {
		t.Fatalf("webhook-signature=%q, want two during the overlap", got)
	}
	if err := verify(h.Header, h.Body, ep2.Secret); err == nil {
		t.Fatal("endpoint 1's request verifies with endpoint 2's secret")
	}
	h2 := r2.deliveries()[1]
	if err := verify(h2.Header, h2.Body, ep2.Secret); err != nil {
		t.Fatalf("endpoint 2 after endpoint 1's rotation: %v", err)
	}
}

func TestRetryScheduleThreeAttempts(t *testing.T) {
	opts := fastOptions()
	opts.Schedule = []time.Duration{150 * time.Millisecond, 300 * time.Millisecond}
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	rcv := newReceiver(t, func(n int, _ hit) int {
		if n < 2 {
			return 500
		}
		return 200
	})
	ep := e.endpoint(rcv.URL)
	e.run()
	id := e.enqueue("invoice.created", `{"number":7}`)
	waitFor(t, 5*time.Second, "three attempts", func() bool { return len(rcv.deliveries()) >= 3 })
	time.Sleep(400 * time.Millisecond) // nothing more may come
	hits := rcv.deliveries()
	if got, want := len(hits), 3; got != want {
		t.Fatalf("attempts=%d, want %d", got, want)
	}
	for i, h := range hits {
		if h.EntryID != id || h.Attempt != i+1 {
			t.Fatalf("hit %d: entry_id=%q attempt=%d", i, h.EntryID, h.Attempt)
		}
	}
	const slack = 250 * time.Millisecond // poll and commit latency, on a busy machine
	for i, want := range opts.Schedule {
		gap := hits[i+1].At.Sub(hits[i].At)
		if gap < want || gap > want+slack {
			t.Errorf("gap before attempt %d = %v, want %v (+%v)", i+2, gap, want, slack)
		}
	}
	ds, _, err := e.relay.Deliveries(context.Background(), outbox.DeliveryFilter{EndpointID: ep.ID})
	if err != nil {
		t.Fatal(err)
	}
	d := ds[0]
	if d.State != outbox.StateDelivered || d.AttemptCount != 3 || len(d.Attempts) != 3 {
		t.Fatalf("delivery %+v", d)
	}
	for i, want := range []int{500, 500, 200} {
		if a := d.Attempts[i]; a.StatusCode != want || !a.Spent || a.Kind != outbox.KindScheduled {
			t.Fatalf("attempt %d: %+v, want status %d", i, a, want)
		}
	}
	if d.Attempts[0].ErrorClass != webhook.ClassHTTP {
		t.Fatalf("error class %q", d.Attempts[0].ErrorClass)
	}
}

func TestDeadAfterMaxAttemptsThenManualRetry(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 4
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	var healthy atomic.Bool
	rcv := newReceiver(t, func(int, hit) int {
		if healthy.Load() {
			return 204
		}
		return 503
	})
	ep := e.endpoint(rcv.URL)
	e.run()
	e.enqueue("payment.completed", `{"amount":1234}`)
	ctx := context.Background()
	waitFor(t, 5*time.Second, "dead", func() bool {
		c, _ := e.relay.Counts(ctx)
		return c[ep.ID].Dead == 1
	})
	time.Sleep(100 * time.Millisecond)
	hits := rcv.deliveries()
	if got, want := len(hits), 4; got != want {
		t.Fatalf("attempts=%d, want %d", got, want)
	}
	var last struct {
		Attempt     int     `json:"attempt"`
		MaxAttempts int     `json:"max_attempts"`
		LastError   *string `json:"last_error"`
	}
	if err := json.Unmarshal(hits[3].Body, &last); err != nil {
		t.Fatal(err)
	}
	if last.Attempt != 4 || last.MaxAttempts != 4 || last.LastError == nil || *last.LastError != "HTTP 503" {
		t.Fatalf("last attempt body %s", hits[3].Body)
	}
	ds, _, err := e.relay.Deliveries(ctx, outbox.DeliveryFilter{EndpointID: ep.ID, State: outbox.StateDead})
	if err != nil || len(ds) != 1 {
		t.Fatalf("dead deliveries %v, %v", ds, err)
	}

	healthy.Store(true)
	d, err := e.relay.Retry(ctx, ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != outbox.StateDelivered || len(d.Attempts) != 5 || d.Attempts[4].Kind != outbox.KindManual || d.Attempts[4].Spent {
		t.Fatalf("after manual retry: %+v", d)
	}
	if got := len(rcv.deliveries()); got != 5 {
		t.Fatalf("receiver saw %d requests, want 5", got)
	}
	c, _ := e.relay.Counts(ctx)
	if c[ep.ID] != (outbox.Counts{}) {
		t.Fatalf("counts %+v", c[ep.ID])
	}
	if _, err := e.relay.Retry(ctx, ds[0].ID); !errors.Is(err, outbox.ErrNotRetryable) {
		t.Fatalf("retry of delivered: %v", err)
	}
}

func TestRecoverRequeuesDead(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 2
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	var healthy atomic.Bool
	rcv := newReceiver(t, func(int, hit) int {
		if healthy.Load() {
			return 200
		}
		return 500
	})
	ep := e.endpoint(rcv.URL)
	e.run()
	start := time.Now().Add(-time.Second)
	for range 3 {
		e.enqueue("receipt.printed", `{}`)
	}
	ctx := context.Background()
	waitFor(t, 5*time.Second, "3 dead", func() bool { c, _ := e.relay.Counts(ctx); return c[ep.ID].Dead == 3 })
	healthy.Store(true)
	n, err := e.relay.Recover(ctx, ep.ID, start)
	if err != nil || n != 3 {
		t.Fatalf("Recover=%d, %v", n, err)
	}
	waitFor(t, 5*time.Second, "recovered deliveries", func() bool {
		c, _ := e.relay.Counts(ctx)
		return c[ep.ID] == outbox.Counts{}
	})
}

func TestGoneDisablesEndpoint(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	rcv := newReceiver(t, func(int, hit) int { return http.StatusGone })
	ep := e.endpoint(rcv.URL)
	e.run()
	e.enqueue("invoice.created", `{}`)
	ctx := context.Background()
	waitFor(t, 5*time.Second, "endpoint disabled", func() bool {
		got, _ := e.hooks.Get(ctx, ep.ID)
		return got.Status == webhook.StatusDisabled
	})
	got, _ := e.hooks.Get(ctx, ep.ID)
	if got.DisabledReason != "gone" {
		t.Fatalf("disabled_reason=%q", got.DisabledReason)
	}
	e.enqueue("invoice.created", `{}`) // a disabled endpoint gets no delivery
	time.Sleep(100 * time.Millisecond)
	if n := len(rcv.deliveries()); n != 1 {
		t.Fatalf("receiver saw %d, want 1", n)
	}
	if c, _ := e.relay.Counts(ctx); c[ep.ID] != (outbox.Counts{Dead: 1}) {
		t.Fatalf("counts %+v", c[ep.ID])
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	rcv := newReceiver(t, func(n int, _ hit) int { return []int{429, 200}[min(n, 1)] })
	rcv.Config.Handler = retryAfter(rcv.Config.Handler)
	e.endpoint(rcv.URL)
	e.run()
	e.enqueue("invoice.created", `{}`)
	waitFor(t, 5*time.Second, "second attempt", func() bool { return len(rcv.deliveries()) == 2 })
	hits := rcv.deliveries()
	if gap := hits[1].At.Sub(hits[0].At); gap < time.Second {
		t.Fatalf("retried after %v despite Retry-After: 1", gap)
	}
}

// retryAfter adds "Retry-After: 1" to every response.
func retryAfter(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		h.ServeHTTP(w, r)
	})
}

func TestRedirectIsAFailureNeverFollowed(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 1
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	target := newReceiver(t, nil)
	var redirecting atomic.Bool
	rcv := newReceiver(t, func(int, hit) int { return http.StatusFound })
	inner := rcv.Config.Handler
	rcv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if redirecting.Load() {
			w.Header().Set("Location", target.URL)
		}
		inner.ServeHTTP(w, r)
	})
	ep := e.endpoint(rcv.URL)
	redirecting.Store(true)
	e.run()
	e.enqueue("invoice.created", `{}`)
	ctx := context.Background()
	waitFor(t, 5*time.Second, "dead", func() bool { c, _ := e.relay.Counts(ctx); return c[ep.ID].Dead == 1 })
	if n := len(target.deliveries()); n != 0 {
		t.Fatalf("redirect target got %d requests", n)
	}
	ds, _, _ := e.relay.Deliveries(ctx, outbox.DeliveryFilter{EndpointID: ep.ID})
	if a := ds[0].Attempts[0]; a.StatusCode != 302 || a.ErrorClass != webhook.ClassRedirect {
		t.Fatalf("attempt %+v", a)
	}
}

func TestOfflineSpendsNoAttemptsThenDrains(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 3
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	r1, r2 := newReceiver(t, nil), newReceiver(t, nil)
	ep1, ep2 := e.endpoint(r1.URL), e.endpoint(r2.URL)
	addr1, addr2 := r1.Listener.Addr().String(), r2.Listener.Addr().String()
	// The network goes down: nothing listens on either port any more.
	r1.Close()
	r2.Close()
	for range 20 {
		e.enqueue("invoice.created", `{}`)
	}
	e.run()
	ctx := context.Background()
	time.Sleep(600 * time.Millisecond) // 12 probe intervals, 4 x max_attempts
	var spent, probes int
	err := e.db.Read.QueryRowContext(ctx, "SELECT COALESCE(SUM(spent), 0), COUNT(*) FROM outbox_attempts").Scan(&spent, &probes)
	if err != nil {
		t.Fatal(err)
	}
	if spent != 0 || probes == 0 {
		t.Fatalf("while offline: %d spent attempts, %d probes; want 0 spent and some probes", spent, probes)
	}
	c, _ := e.relay.Counts(ctx)
	if c[ep1.ID] != (outbox.Counts{Pending: 20}) || c[ep2.ID] != (outbox.Counts{Pending: 20}) {
		t.Fatalf("counts while offline %+v", c)
	}

	// The network comes back on the same ports.
	n1, n2 := relisten(t, addr1), relisten(t, addr2)
	waitFor(t, 10*time.Second, "drain after reconnect", func() bool {
		return len(n1.deliveries()) >= 20 && len(n2.deliveries()) >= 20
	})
	waitFor(t, 5*time.Second, "counters", func() bool {
		c, _ := e.relay.Counts(ctx)
		return c[ep1.ID] == outbox.Counts{} && c[ep2.ID] == outbox.Counts{}
	})
}

// relisten starts a recording receiver on addr.
func relisten(t *testing.T, addr string) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	r := newReceiver(t, nil)
	r.Close()
	srv := httptest.NewUnstartedServer(r.Config.Handler)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	r.Server = srv
	return r
}

// Run leaves nothing behind: after it returns, the goroutine count is back
// where it was (lane workers, senders and their connections are gone).
func TestRunStopsEverything(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	r1, r2 := newReceiver(t, nil), newReceiver(t, nil)
	e.endpoint(r1.URL)
	e.endpoint(r2.URL)
	e.hooks.Sender().CloseIdleConnections()
	time.Sleep(50 * time.Millisecond)
	before := runtime.NumGoroutine()

	stop := e.run()
	for range 50 {
		e.enqueue("invoice.created", `{}`)
	}
	waitFor(t, 5*time.Second, "deliveries", func() bool { return len(r1.deliveries()) >= 50 && len(r2.deliveries()) >= 50 })
	stop()
	waitFor(t, 5*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// Disabling an endpoint mid-drain hands its queue back unsent; enabling
// it again resumes; deleting another mid-drain takes its rows away
// without upsetting the relay.
func TestDisableEnableDeleteMidDrain(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	slow := func(int, hit) int { time.Sleep(2 * time.Millisecond); return 200 }
	r1, r2 := newReceiver(t, slow), newReceiver(t, slow)
	ep1, ep2 := e.endpoint(r1.URL), e.endpoint(r2.URL)
	ctx := context.Background()
	for i := range 300 {
		e.enqueue("invoice.created", fmt.Sprintf(`{"i":%d}`, i))
	}
	e.run()
	waitFor(t, 10*time.Second, "some deliveries", func() bool { return len(r1.deliveries()) >= 20 && len(r2.deliveries()) >= 20 })

	disabled, active := webhook.StatusDisabled, webhook.StatusActive
	if _, err := e.hooks.Update(ctx, ep1.ID, webhook.Patch{Status: &disabled}); err != nil {
		t.Fatal(err)
	}
	if err := e.hooks.Delete(ctx, ep2.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // in-flight requests finish
	n1 := len(r1.deliveries())
	time.Sleep(200 * time.Millisecond)
	if got := len(r1.deliveries()); got != n1 {
		t.Fatalf("disabled endpoint still receives: %d then %d", n1, got)
	}
	c, _ := e.relay.Counts(ctx)
	if c[ep1.ID].Pending == 0 {
		t.Fatal("disabled endpoint has no pending deliveries left to resume")
	}
	if _, ok := c[ep2.ID]; ok {
		t.Fatal("deleted endpoint still has counters")
	}

	if _, err := e.hooks.Update(ctx, ep1.ID, webhook.Patch{Status: &active}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "resumed drain", func() bool {
		c, _ := e.relay.Counts(ctx)
		return c[ep1.ID].Pending == 0
	})
	seen := map[string]bool{}
	for _, h := range r1.deliveries() {
		seen[h.EntryID] = true
	}
	if len(seen) != 300 {
		t.Fatalf("endpoint 1 got %d distinct events, want 300", len(seen))
	}
	checkCounters(t, e)
}
