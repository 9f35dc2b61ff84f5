package outbox_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/webhook"
)

// TestRelayYieldsToTill: while the till writes (foreground transactions
// in flight: store.DB.Busy), the relay sends at most BusyRate per second;
// once the till is quiet it drains the rest at full speed.
func TestRelayYieldsToTill(t *testing.T) {
	const events, rate = 300, 40
	opts := fastOptions()
	opts.BusyRate = rate
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	r := newReceiver(t, nil)
	e.endpoint(r.URL)
	for range events {
		e.enqueue("invoice.created", `{"n":1}`)
	}

	ctx, stopTill := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			// A till's write: foreground, short.
			_ = e.db.InTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "SELECT 1")
				return err
			})
		}
	})
	defer func() { stopTill(); wg.Wait() }()
	waitFor(t, 5*time.Second, "the till to be busy", e.db.Busy)

	e.run()
	const busyFor = time.Second
	time.Sleep(busyFor)
	during := len(r.deliveries())
	stopTill()
	wg.Wait()
	// The limiter's burst, a claim's sends already past the throttle,
	// and scheduling on a loaded machine: some slack above rate×1 s.
	if max := rate*int(busyFor/time.Second) + 25; during > max {
		t.Fatalf("%d deliveries while the till was busy for %v, want at most %d (BusyRate %d/s)", during, busyFor, max, rate)
	}
	if during == 0 {
		t.Fatalf("no delivery while the till was busy: the relay must slow down, not stop")
	}
	// At the busy rate the rest would take over 6 s; at full speed it takes
	// well under 5 s.
	t.Logf("%d deliveries while busy", during)
	waitFor(t, 5*time.Second, "the rest delivered at full speed", func() bool { return len(r.deliveries()) >= events })
}
