package outbox_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

// startKfake runs franz-go's in-process fake Kafka cluster on loopback
// at port (0: any), persisting to dir, with topic posgate of 3
// partitions. kfake speaks the Kafka protocol but is not Kafka: see
// docs/fleet.md for what that leaves untested.
func startKfake(t *testing.T, dir string, port int) *kfake.Cluster {
	t.Helper()
	// No SyncWrites: like Kafka's default, an acknowledged batch is in
	// the page cache, not fsynced; the stop below is a clean one.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(3, "posgate"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close) // Close is idempotent
	return c
}

// Issue 18 parts 1 and 2 (kafka), as far as it runs here: events produced
// through the idempotent producer to kfake, which is closed mid-stream
// and started again on the same data directory and port: every event
// acknowledged before the stop is still in the topic, every event
// arrives (0 lost), every record is keyed by the store id, and a record
// that arrives twice carries the same entry_id (webhook-id header).
// POSGATE_KAFKA_EVENTS raises the count (100,000 for the figure).
func TestKafkaDeliveryThroughBrokerRestart(t *testing.T) {
	t.Parallel() // most of its time is a broker starting or draining
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("POSGATE_KAFKA_EVENTS")); err == nil && v > 0 {
		n = v
	}
	dir := t.TempDir()
	cluster := startKfake(t, dir, 0)
	addr := cluster.ListenAddrs()[0]
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	ctx := context.Background()

	opts := fastOptions()
	opts.MaxAttempts = 1000
	e := newEnv(t, "", opts, webhook.SenderOptions{}, webhook.Options{StoreID: "shop-9"})
	ep, _, err := e.hooks.Create(ctx, webhook.NewParams{Type: webhook.TypeKafka, URL: "kafka://" + addr,
		Kafka: &webhook.KafkaConfig{Topic: "posgate"}})
	if err != nil {
		t.Fatal(err)
	}
	ids := enqueueN(t, e, n)
	e.run()
	waitFor(t, 60*time.Second+time.Duration(n)*time.Millisecond, "a quarter acknowledged", func() bool { return len(deliveredIDs(t, e, ep.ID)) >= n/4 })
	cluster.Close()
	acked := deliveredIDs(t, e, ep.ID)
	if len(acked) >= n {
		t.Fatalf("all %d acknowledged before the cluster stopped; nothing was tested", n)
	}
	t.Logf("cluster stopped after %d of %d acknowledged", len(acked), n)
	// Longer than an attempt (2 s here): franz-go's own retries give up
	// and the relay records failed attempts and retries them itself.
	time.Sleep(3 * time.Second)
	startKfake(t, dir, port)
	t0 := time.Now()
	waitFor(t, 180*time.Second+time.Duration(n)*5*time.Millisecond, "every delivery done", func() bool { c, _ := e.relay.Counts(ctx); return c[ep.ID] == outbox.Counts{} })
	var failedAttempts int
	_ = e.db.Read.QueryRow("SELECT COUNT(*) FROM outbox_attempts").Scan(&failedAttempts)
	t.Logf("drained in %v after the restart; %d failed attempts recorded", time.Since(t0), failedAttempts)

	// Re-sends after a relay crash between the broker's ack and the
	// commit: 50 delivered rows made pending again.
	const again = 50
	if _, err := e.db.Write.Exec(`UPDATE outbox_deliveries SET state = 0, finished_at = NULL, next_attempt_at = 0
		WHERE id IN (SELECT id FROM outbox_deliveries WHERE endpoint_id = ? ORDER BY id LIMIT ?)`, ep.ID, again); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Write.Exec("UPDATE outbox_counters SET pending = pending + ? WHERE endpoint_id = ?", again, ep.ID); err != nil {
		t.Fatal(err)
	}
	e.relay.Notify()
	waitFor(t, 30*time.Second, "the re-sends", func() bool { c, _ := e.relay.Counts(ctx); return c[ep.ID] == outbox.Counts{} })

	// Read the topic back from the start.
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("posgate"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int{}
	pings := 0
	deadline := time.Now().Add(120 * time.Second)
	for quiet := false; !quiet; {
		if time.Now().After(deadline) {
			t.Fatalf("read %d distinct events in 120 s", len(seen))
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cons.PollFetches(pctx)
		cancel()
		recs := fs.Records()
		quiet = len(recs) == 0 && len(seen) >= n
		for _, r := range recs {
			h := http.Header{}
			for _, rh := range r.Headers {
				h.Set(rh.Key, string(rh.Value))
			}
			var body struct {
				Event   string `json:"event"`
				EntryID string `json:"entry_id"`
			}
			if err := json.Unmarshal(r.Value, &body); err != nil || body.EntryID != h.Get("webhook-id") || string(r.Key) != "shop-9" {
				t.Fatalf("record key %q webhook-id %q: %s (%v)", r.Key, h.Get("webhook-id"), r.Value, err)
			}
			if err := verify(h, r.Value, ep.Secret); err != nil {
				t.Fatalf("record %s does not verify: %v", body.EntryID, err)
			}
			if body.Event == "ping" {
				pings++
				continue
			}
			seen[body.EntryID]++
		}
	}
	lost, lostAcked, dupIDs, extra := 0, 0, 0, 0
	for id := range ids {
		switch c := seen[id]; {
		case c == 0:
			lost++
			if acked[id] {
				lostAcked++
			}
		case c > 1:
			dupIDs++
			extra += c - 1
		}
	}
	if lost != 0 || len(seen) != n || pings != 1 {
		t.Fatalf("%d events: %d lost (%d of them acknowledged before the stop), %d distinct read, %d pings", n, lost, lostAcked, len(seen), pings)
	}
	if dupIDs < again {
		t.Fatalf("%d events arrived more than once, want at least the %d forced re-sends", dupIDs, again)
	}
	t.Logf("%d events through a stop and restart of kfake: 0 lost; %d arrived more than once (%d extra copies, %d forced), each copy under its entry_id", n, dupIDs, extra, again)
}
