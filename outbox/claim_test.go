package outbox_test

import (
	"context"
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
