package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/store"
)

// BenchmarkCommit measures durable commits (synchronous=FULL, one small
// insert each) by N concurrent writers, with and without group commit,
// beside the raw baseline of one autocommit INSERT at a time on the same
// machine in the same run. Metrics: commits/s and p99 latency in ms.
func BenchmarkCommit(b *testing.B) {
	b.Run("raw-single", func(b *testing.B) {
		db := benchStore(b, store.Options{SerialCommit: true})
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			t0 := time.Now()
			if _, err := db.Write.Exec("INSERT INTO bench (v) VALUES (?)", i); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		report(b, start, lat)
	})
	for _, mode := range []struct {
		name string
		opts store.Options
	}{
		{"serial", store.Options{SerialCommit: true}},
		{"group", store.Options{}},
	} {
		for _, n := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode.name, n), func(b *testing.B) {
				db := benchStore(b, mode.opts)
				var (
					next atomic.Int64
					mu   sync.Mutex
					lat  = make([]time.Duration, 0, b.N)
					wg   sync.WaitGroup
				)
				ctx := context.Background()
				b.ResetTimer()
				start := time.Now()
				for range n {
					wg.Go(func() {
						var mine []time.Duration
						for {
							i := next.Add(1)
							if i > int64(b.N) {
								break
							}
							t0 := time.Now()
							err := db.InTx(ctx, func(tx *sql.Tx) error {
								_, err := tx.ExecContext(ctx, "INSERT INTO bench (v) VALUES (?)", i)
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
				report(b, start, lat)
			})
		}
	}
}

func benchStore(b *testing.B, opts store.Options) *store.DB {
	b.Helper()
	db, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, err := db.Write.Exec("CREATE TABLE bench (id INTEGER PRIMARY KEY, v INTEGER NOT NULL) STRICT"); err != nil {
		b.Fatal(err)
	}
	return db
}

func report(b *testing.B, start time.Time, lat []time.Duration) {
	b.Helper()
	el := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/el.Seconds(), "commits/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPriority measures 16 concurrent API-like writers (one INSERT
// each) while a relay-like loop keeps committing heavy bookkeeping
// transactions (an UPDATE of 5,000 rows each) back to back: without the
// loop (idle, the baseline), with the loop at normal priority, and with
// it marked WithLowPriority as the outbox relay does. Metrics: the API
// writers' p99 and commits/s, and the loop's transactions/s.
func BenchmarkPriority(b *testing.B) {
	for _, mode := range []string{"idle", "relay=normal", "relay=low"} {
		b.Run(mode, func(b *testing.B) {
			db := benchStore(b, store.Options{})
			ctx := context.Background()
			if _, err := db.Write.Exec(`CREATE TABLE backlog (id INTEGER PRIMARY KEY, v INTEGER NOT NULL) STRICT;
				INSERT INTO backlog (v) WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM r WHERE x < 20000) SELECT 0 FROM r`); err != nil {
				b.Fatal(err)
			}
			stop := make(chan struct{})
			var relayTx atomic.Int64
			var relay sync.WaitGroup
			if mode != "idle" {
				rctx := ctx
				if mode == "relay=low" {
					rctx = store.WithLowPriority(ctx)
				}
				relay.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						lo := (i * 5000) % 15000
						err := db.InTx(rctx, func(tx *sql.Tx) error {
							_, err := tx.ExecContext(rctx, "UPDATE backlog SET v = v + 1 WHERE id > ? AND id <= ?", lo, lo+5000)
							return err
						})
						if err != nil {
							b.Error(err)
							return
						}
						relayTx.Add(1)
					}
				})
			}
			var (
				next atomic.Int64
				mu   sync.Mutex
				lat  = make([]time.Duration, 0, b.N)
				wg   sync.WaitGroup
			)
			b.ResetTimer()
			start := time.Now()
			for range 16 {
				wg.Go(func() {
					var mine []time.Duration
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						err := db.InTx(ctx, func(tx *sql.Tx) error {
							_, err := tx.ExecContext(ctx, "INSERT INTO bench (v) VALUES (1)")
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
			close(stop)
			relay.Wait()
			report(b, start, lat)
			b.ReportMetric(float64(relayTx.Load())/el.Seconds(), "relay-tx/s")
		})
	}
}
