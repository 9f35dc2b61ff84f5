package outbox_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

func TestPruneKeepsDeadLongerThanDelivered(t *testing.T) {
	var offset atomic.Int64 // the relay's clock runs ahead by this much
	opts := fastOptions()
	opts.MaxAttempts = 1
	opts.RetentionBatch = 2 // several rounds
	opts.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	good := newReceiver(t, nil)
	bad := newReceiver(t, func(int, hit) int { return 500 })
	epGood := e.endpoint(good.URL, "invoice.created")
	epBad := e.endpoint(bad.URL, "payment.failed")
	for range 5 {
		e.enqueue("invoice.created", `{}`)
		e.enqueue("payment.failed", `{}`)
	}
	stop := e.run()
	ctx := context.Background()
	waitFor(t, 5*time.Second, "drain", func() bool {
		c, _ := e.relay.Counts(ctx)
		return c[epGood.ID].Pending == 0 && c[epBad.ID].Pending == 0
	})
	stop()

	count := func(q string) int {
		var n int
		if err := e.db.Read.QueryRow(q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	prune := func() {
		for {
			_, more, err := e.relay.Prune(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !more {
				return
			}
		}
	}
	prune()
	if n := count("SELECT COUNT(*) FROM outbox_deliveries"); n != 10 {
		t.Fatalf("fresh rows pruned: %d left", n)
	}
	offset.Store(int64(8 * 24 * time.Hour))
	prune()
	if got, want := count("SELECT COUNT(*) FROM outbox_deliveries WHERE state = 2"), 0; got != want {
		t.Fatalf("delivered after 8 days: %d", got)
	}
	if got, want := count("SELECT COUNT(*) FROM outbox_deliveries WHERE state = 3"), 5; got != want {
		t.Fatalf("dead after 8 days: %d, want %d", got, want)
	}
	if got, want := count("SELECT COUNT(*) FROM outbox_events"), 5; got != want {
		t.Fatalf("events after 8 days: %d, want %d (those of dead deliveries)", got, want)
	}
	offset.Store(int64(31 * 24 * time.Hour))
	prune()
	for _, tbl := range []string{"outbox_deliveries", "outbox_attempts", "outbox_events"} {
		if n := count("SELECT COUNT(*) FROM " + tbl); n != 0 {
			t.Fatalf("%s has %d rows after 31 days", tbl, n)
		}
	}
	if c, _ := e.relay.Counts(ctx); c[epBad.ID] != (outbox.Counts{}) {
		t.Fatalf("counters after pruning dead: %+v", c[epBad.ID])
	}
}
