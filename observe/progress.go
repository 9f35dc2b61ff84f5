package observe

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// Progress logs one line every interval while long work runs (a Z report
// can take minutes on a full day), so whoever watches the log sees it is
// alive. Call the returned stop when the work ends; it logs nothing if the
// work ended before the first interval.
func Progress(ctx context.Context, log zerolog.Logger, task string, every time.Duration) (stop func()) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				log.Info().Str("task", task).Dur("elapsed", time.Since(start)).Msg("still working")
			}
		}
	}()
	return func() { cancel(); <-done }
}

// BacklogWatch logs the webhook backlog's drain while it is at least
// threshold deliveries: pending, the rate since the last line and the
// time left at that rate; and one line when it falls back under. pending
// reads the backlog (the outbox's counter rows). It runs until ctx ends.
func BacklogWatch(ctx context.Context, log zerolog.Logger, pending func(context.Context) (int64, error), threshold int64, every time.Duration) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last int64 = -1
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		n, err := pending(ctx)
		if err != nil {
			continue
		}
		switch {
		case n >= threshold:
			ev := log.Info().Int64("pending", n)
			if last >= 0 {
				rate := float64(last-n) / every.Seconds()
				ev = ev.Float64("per_second", rate)
				if rate > 0 {
					ev = ev.Dur("eta", time.Duration(float64(n)/rate*float64(time.Second)).Round(time.Second))
				}
			}
			ev.Msg("webhook backlog draining")
			last = n
		case last >= 0:
			log.Info().Int64("pending", n).Msg("webhook backlog drained")
			last = -1
		}
	}
}
