//go:build linux && cgo

package outbox_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/posgate/posgate/internal/slowvfs"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// BenchmarkDeliverySlowDisk: deliveries/s from the outbox to a loopback
// receiver (production options, every result committed with
// synchronous=FULL) on a disk whose every fsync takes 5 ms longer, as an
// SD card's or eMMC's (internal/slowvfs), beside the same drain with no
// added delay in the same run; medians of three rounds of 20,000. The
// delay is slowvfs.BenchDelay (POSGATE_BENCH_FSYNC).
func BenchmarkDeliverySlowDisk(b *testing.B) {
	const n, rounds = 20000, 3
	d, err := slowvfs.BenchDelay()
	if err != nil {
		b.Fatal(err)
	}
	for _, fsync := range []time.Duration{0, d} {
		b.Run(fmt.Sprintf("fsync=%v", fsync), func(b *testing.B) {
			if err := slowvfs.Register(fsync); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				e := newEnvStore(b, "", store.Options{VFS: slowvfs.Name}, outbox.Options{}, webhook.SenderOptions{Timeout: 10 * time.Second})
				s := newSink(b)
				ep := e.endpoint(s.URL).ID
				var rates []float64
				for range rounds {
					seed(b, e.db, ep, n)
					rates = append(rates, drain(b, e, s, n))
				}
				b.ReportMetric(median(rates), "deliveries/s")
				b.ReportMetric(0, "ns/op")
			}
		})
	}
}
