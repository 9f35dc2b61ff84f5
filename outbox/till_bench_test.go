package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/outbox"
)

// BenchmarkTillDuringDrain: 16 concurrent tills each commit an event
// (EnqueueTx: the event and its delivery row, what an invoice or payment
// adds to its own transaction) while the relay drains a 100,000-delivery
// backlog at full speed to a loopback receiver, beside the same tills on
// an idle store in the same run. The relay's bookkeeping runs at low write
// priority (store.WithLowPriority) and its sends slow to BusyRate while
// the tills write (store.DB.Busy), so the tills' p99 should stay near its
// idle value (issue 17: at most 2×). "draining-unthrottled" is the same
// drain with the send throttle off (BusyRate -1). Metrics: the tills' p99
// and commits/s, and the relay's deliveries/s meanwhile.
func BenchmarkTillDuringDrain(b *testing.B) {
	const backlog, tills, writes = 100000, 16, 3000
	for _, name := range []string{"idle", "draining-unthrottled", "draining"} {
		draining := name != "idle"
		opts := outbox.Options{}
		if name == "draining-unthrottled" {
			opts.BusyRate = -1
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				e, s, ep := benchEnvWith(b, opts)
				stop := func() {}
				if draining {
					seed(b, e.db, ep, backlog)
					// Stopped at the end of this round: a relay left running
					// drains its own store beside the next round's, and the
					// till's writes there do not slow it.
					stop = e.run()
					deadline := time.Now().Add(time.Minute)
					for s.n.Load() < 1000 {
						if time.Now().After(deadline) {
							b.Fatal("the relay did not start draining within a minute")
						}
						time.Sleep(time.Millisecond)
					}
				}
				ctx := context.Background()
				data := json.RawMessage(`{"invoice":"inv_1","total":1234}`)
				var (
					next atomic.Int64
					mu   sync.Mutex
					lat  = make([]time.Duration, 0, writes)
					wg   sync.WaitGroup
				)
				sent0, start := s.n.Load(), time.Now()
				for range tills {
					wg.Go(func() {
						var mine []time.Duration
						for next.Add(1) <= writes {
							t0 := time.Now()
							err := e.db.InTx(ctx, func(tx *sql.Tx) error {
								_, err := outbox.EnqueueTx(ctx, tx, outbox.Event{Type: "invoice.created", Data: data})
								return err
							})
							if err != nil {
								b.Error(err)
								return
							}
							mine = append(mine, time.Since(t0))
						}
						mu.Lock()
						lat = append(lat, mine...)
						mu.Unlock()
					})
				}
				wg.Wait()
				el := time.Since(start)
				delivered := s.n.Load() - sent0
				stop()
				if draining && s.n.Load() >= backlog {
					b.Logf("the backlog ran out during the measurement: the relay was not busy throughout")
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "till-p99-ms")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "till-p50-ms")
				b.ReportMetric(float64(len(lat))/el.Seconds(), "till-commits/s")
				b.ReportMetric(float64(delivered)/el.Seconds(), "deliveries/s")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}
