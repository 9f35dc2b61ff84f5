package me_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/fiscal"
)

func p99(lat []time.Duration) time.Duration {
	slices.Sort(lat)
	return lat[(len(lat)*99)/100]
}

// BenchmarkInvoiceAPIWithRegistration: the invoice's create+sign+commit
// p99 with the registration job committed in the same transaction and
// the worker registering every invoice against the simulator meanwhile,
// beside the same without registration (the baseline of the same run).
// Registration runs after the commit, so it should add only the job's
// row to the invoice's latency.
func BenchmarkInvoiceAPIWithRegistration(b *testing.B) {
	for _, withReg := range []bool{false, true} {
		name := "baseline=no-registration"
		if withReg {
			name = "with-registration-worker"
		}
		b.Run(name, func(b *testing.B) {
			r := newRig(b, rigOptions{})
			inv := r.inv
			if !withReg {
				inv = fiscal.NewInvoices(r.db, fiscal.InvoicesOptions{Scheme: mustScheme(b), Certificates: r.certs,
					TIN: issuer.TIN, BusinessUnit: issuer.BusinessUnit, Device: issuer.TCR, Software: issuer.Software, Now: r.clk.Now})
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			if withReg {
				wg.Go(func() { r.reg.Run(ctx) })
			}
			lat := make([]time.Duration, 0, b.N)
			req := fiscal.NewInvoice{Type: fiscal.TypeSale,
				Items:    []fiscal.NewItem{{Name: "Espresso", Quantity: "1", UnitPrice: 150, VATRate: "21"}},
				Payments: []fiscal.NewPayment{{Type: fiscal.PayCash, Amount: 150}}}
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				if _, err := inv.Create(ctx, req, fiscal.Caller{KeyID: "k", CertificateID: r.certID, IdempotencyKey: fmt.Sprint(i)}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			b.ReportMetric(float64(p99(lat).Microseconds()), "p99-µs")
			if withReg {
				// How many the worker registered while the till was busy.
				var during int
				r.db.Read.QueryRow("SELECT COUNT(*) FROM fiscal_registrations WHERE state = 'completed'").Scan(&during)
				b.ReportMetric(float64(during), "registered-during")
				// Let the worker finish, so the figure above ran beside it.
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					var n int
					r.db.Read.QueryRow("SELECT COUNT(*) FROM fiscal_registrations WHERE state = 'pending'").Scan(&n)
					if n == 0 {
						break
					}
				}
				b.ReportMetric(float64(len(r.sim.Requests())), "registered")
			}
			cancel()
			wg.Wait()
		})
	}
}

// BenchmarkDrainOfflineBacklog issues a backlog of invoices while the
// link is down (POSGATE_BENCH_BACKLOG, default 10,000), then measures
// how fast the worker delivers them to the simulator over HTTPS (sign,
// send, verify the answer, commit), in order. It runs once whatever b.N.
func BenchmarkDrainOfflineBacklog(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("POSGATE_BENCH_BACKLOG")); err == nil && v > 0 {
		n = v
	}
	r := newRig(b, rigOptions{})
	r.offline.Store(true)
	for i := range n {
		if _, err := r.inv.Create(context.Background(), fiscal.NewInvoice{Type: fiscal.TypeSale,
			Items:    []fiscal.NewItem{{Name: "Espresso", Quantity: "1", UnitPrice: 150, VATRate: "21"}},
			Payments: []fiscal.NewPayment{{Type: fiscal.PayCash, Amount: 150}}},
			fiscal.Caller{KeyID: "k", CertificateID: r.certID, IdempotencyKey: fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
	}
	r.runOnce() // one probe while offline: spends nothing
	r.offline.Store(false)
	r.clk.Add(time.Minute)
	b.ResetTimer()
	t0 := time.Now()
	sent := 0
	for r.runOnce() {
		sent++
	}
	el := time.Since(t0)
	b.StopTimer()
	var done int
	r.db.Read.QueryRow("SELECT COUNT(*) FROM fiscal_registrations WHERE state = 'completed'").Scan(&done)
	if done != n || sent != n {
		b.Fatalf("%d of %d registered in %d runs", done, n, sent)
	}
	b.ReportMetric(float64(n)/el.Seconds(), "invoices/s")
	b.ReportMetric(float64(n), "backlog")
}
