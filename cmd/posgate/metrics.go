package main

import (
	"context"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/outbox"
)

// pendingDeliveries sums the outbox's pending counters.
func pendingDeliveries(relay *outbox.Relay) func(context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) {
		counts, err := relay.Counts(ctx)
		if err != nil {
			return 0, err
		}
		var n int64
		for _, c := range counts {
			n += c.Pending
		}
		return n, nil
	}
}

// registerGauges puts the figures an operator watches on /metrics: each
// device's line, and the webhook backlog (read from the outbox's counter
// rows, never a COUNT(*) scan).
func registerGauges(set *metrics.Set, links []*device.Link, relay *outbox.Relay) {
	for _, l := range links {
		set.NewGauge(fmt.Sprintf(`posgate_device_online{device=%q}`, l.ID()), func() float64 {
			if online, _ := l.State(); online {
				return 1
			}
			return 0
		})
	}
	total := func(pick func(outbox.Counts) int64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			counts, err := relay.Counts(ctx)
			if err != nil {
				return -1
			}
			var n int64
			for _, c := range counts {
				n += pick(c)
			}
			return float64(n)
		}
	}
	set.NewGauge("posgate_webhook_deliveries_pending", total(func(c outbox.Counts) int64 { return c.Pending }))
	set.NewGauge("posgate_webhook_deliveries_dead", total(func(c outbox.Counts) int64 { return c.Dead }))
}
