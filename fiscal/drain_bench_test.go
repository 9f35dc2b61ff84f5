package fiscal_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/posgate/posgate/internal/drainbench"
)

// BenchmarkInvoiceDuringDrain: 16 concurrent callers create 4,000
// invoices (validate, number, sign, commit with event, delivery and print
// job) while the outbox relay drains a backlog of 1,000,000 deliveries at
// full speed to a loopback receiver, beside the same callers on the same
// kind of store whose relay has no backlog (idle: it only sends what the
// invoices add). DESIGN §8: invoice p99 while draining at most 2× idle.
// Metrics: invoices/s, p99, and the relay's deliveries/s meanwhile.
// POSGATE_BENCH_LARGE=0 uses a 100,000 backlog instead.
func BenchmarkInvoiceDuringDrain(b *testing.B) {
	const callers, invoices = 16, 4000
	large := 1_000_000
	if os.Getenv("POSGATE_BENCH_LARGE") == "0" {
		large = 100_000
	}
	for _, backlog := range []int{0, large} {
		name := "idle"
		if backlog > 0 {
			name = fmt.Sprintf("draining=%d", backlog)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				e := newEnv(b, "p1")
				delivered := drainbench.Start(b, e.db, backlog)
				lat, el := createInvoices(b, e, callers, invoices)
				b.ReportMetric(delivered(), "deliveries/s")
				reportInvoices(b, lat, el)
			}
		})
	}
}
