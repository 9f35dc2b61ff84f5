package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

// A lane's claims scan on from the last row they took (the claim cursor),
// so an event that falls due behind it, here one stamped an hour ago and
// enqueued in the middle of a backlog drain, is found when the cursor
// starts over (every second at the latest), long before the backlog
// ends, and nothing is lost or sent twice.
func TestClaimCursorFindsRowsBehindIt(t *testing.T) {
	const backlog = 80
	opts := fastOptions()
	opts.PerEndpoint, opts.Prefetch = 1, 2 // many small claims, each moving the cursor
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	r := newReceiver(t, func(int, hit) int {
		time.Sleep(25 * time.Millisecond) // a backlog of ~2 s at one request at a time
		return 200
	})
	e.endpoint(r.URL)
	for i := range backlog {
		e.enqueue("invoice.created", `{"i":`+itoa(i)+`}`)
	}
	e.run()
	waitFor(t, 10*time.Second, "the drain under way", func() bool { return len(r.deliveries()) >= 10 })
	late, err := e.relay.Enqueue(context.Background(), outbox.Event{Type: "invoice.created",
		Data: json.RawMessage(`{"late":true}`), Time: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "everything delivered", func() bool { return len(r.deliveries()) >= backlog+1 })
	ds := r.deliveries()
	pos, seen := -1, map[string]bool{}
	for i, h := range ds {
		if seen[h.EntryID] {
			t.Fatalf("%s sent twice", h.EntryID)
		}
		seen[h.EntryID] = true
		if h.EntryID == late {
			pos = i
		}
	}
	if len(ds) != backlog+1 || pos < 0 {
		t.Fatalf("%d deliveries, late event at %d", len(ds), pos)
	}
	// Enqueued after the 10th; the cursor starts over within a second,
	// ~40 sends at this pace: it must not wait for the backlog's end.
	t.Logf("late event sent %dth of %d", pos+1, backlog+1)
	if pos >= backlog-10 {
		t.Fatalf("the late event went out %dth of %d: it waited for the backlog to run out", pos+1, backlog+1)
	}
}

// Results wait up to AckDelay to share a commit, but a FIFO lane claims
// its next head only once the last result is recorded: its results are
// recorded at once, so a FIFO queue never moves at one event per AckDelay.
func TestFIFOHeadRecordedWithoutAckDelay(t *testing.T) {
	const n = 5
	opts := fastOptions()
	opts.AckDelay = time.Minute
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	r := newReceiver(t, nil)
	e.endpointWith(webhook.NewParams{URL: r.URL, Ordering: webhook.OrderingFIFO})
	for i := range n {
		e.enqueue("invoice.created", `{"i":`+itoa(i)+`}`)
	}
	e.run()
	waitFor(t, 20*time.Second, "every FIFO event delivered", func() bool { return len(r.deliveries()) == n })
}

// Results wake the relay's loop in batches, not one by one (the
// mailbox's wakeAt), yet none waits for the poll: with Poll at ten
// minutes, two endpoints' lanes are refilled as their results come back
// (a queue of 72, refilled from half empty, for 600 deliveries each),
// and the last results are recorded within AckDelay of their requests.
func TestResultsWakeLoopWithoutPoll(t *testing.T) {
	const n = 600
	opts := fastOptions()
	opts.Poll = 10 * time.Minute
	opts.AckDelay = 50 * time.Millisecond
	opts.PerEndpoint, opts.Prefetch = 8, 64
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	r1, r2 := newReceiver(t, nil), newReceiver(t, nil)
	ep1, ep2 := e.endpoint(r1.URL), e.endpoint(r2.URL)
	ctx := context.Background()
	err := e.db.InTx(ctx, func(tx *sql.Tx) error {
		for i := range n {
			if _, err := outbox.EnqueueTx(ctx, tx, outbox.Event{Type: "invoice.created", Data: json.RawMessage(`{"i":` + itoa(i) + `}`)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.run()
	waitFor(t, 60*time.Second, "every request sent", func() bool { return len(r1.deliveries()) == n && len(r2.deliveries()) == n })
	sent := time.Now()
	waitFor(t, 60*time.Second, "every result recorded", func() bool {
		c, _ := e.relay.Counts(ctx)
		return c[ep1.ID] == outbox.Counts{} && c[ep2.ID] == outbox.Counts{}
	})
	// AckDelay and a commit; far below the poll either way.
	if d := time.Since(sent); d > 5*time.Second {
		t.Fatalf("last results recorded %v after their requests, want within about AckDelay (%v)", d, opts.AckDelay)
	}
}
