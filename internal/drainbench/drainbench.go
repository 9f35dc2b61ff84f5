package drainbench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// Start seeds rows pending deliveries to a loopback receiver in db and
// runs an outbox relay (production options) over db until the benchmark
// ends. It returns once the relay is draining; the function it returns
// gives the deliveries/s since then. With rows 0 it seeds nothing: the
// idle baseline, a box whose relay only sends what the till adds.
func Start(b testing.TB, db *store.DB, rows int) func() float64 {
	b.Helper()
	var n atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n.Add(1)
	}))
	b.Cleanup(sink.Close)
	mk, err := masterkey.New(make([]byte, masterkey.Size))
	if err != nil {
		b.Fatal(err)
	}
	hooks := webhook.New(db, mk, webhook.NewSender(webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true}), webhook.Options{})
	ctx := context.Background()
	ep, _, err := hooks.Create(ctx, webhook.NewParams{URL: sink.URL})
	if err != nil {
		b.Fatal(err)
	}
	// Set-up, not measured: no fsync while seeding, then FULL again.
	now := store.Millis(time.Now())
	seed := []string{
		"PRAGMA synchronous = OFF",
		`WITH RECURSIVE x(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM x WHERE i < ` + strconv.Itoa(rows) + `)
			INSERT INTO outbox_events (id, type, data, created_at)
			SELECT 'evt_drain_' || i, 'invoice.created', CAST('{"invoice":"inv_1","total":1234}' AS BLOB), ` + strconv.FormatInt(now, 10) + ` FROM x`,
		`INSERT INTO outbox_deliveries (event_seq, endpoint_id, next_attempt_at, created_at)
			SELECT seq, '` + ep.ID + `', 0, created_at FROM outbox_events WHERE id LIKE 'evt_drain_%'`,
		"UPDATE outbox_counters SET pending = pending + " + strconv.Itoa(rows) + " WHERE endpoint_id = '" + ep.ID + "'",
		"PRAGMA synchronous = FULL",
		"PRAGMA wal_checkpoint(TRUNCATE)",
	}
	if rows == 0 {
		seed = nil
	}
	for _, q := range seed {
		if _, err := db.Write.ExecContext(ctx, q); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	relay := outbox.NewRelay(db, hooks, zerolog.Nop(), outbox.Options{})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(rctx) }()
	b.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Error("relay did not stop within 30 s")
		}
	})
	deadline := time.Now().Add(time.Minute)
	for n.Load() < int64(min(rows, 1000)) {
		if time.Now().After(deadline) {
			b.Fatal("the relay did not start draining within a minute")
		}
		time.Sleep(time.Millisecond)
	}
	n0, t0 := n.Load(), time.Now()
	return func() float64 {
		if rows > 0 && n.Load() >= int64(rows) {
			b.Logf("the backlog ran out during the measurement")
		}
		return float64(n.Load()-n0) / time.Since(t0).Seconds()
	}
}
