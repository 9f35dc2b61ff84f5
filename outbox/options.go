package outbox

import (
	"math/rand/v2"
	"time"
)

// Options configure a Relay. Zero values take the defaults noted, which
// are DESIGN §6's.
type Options struct {
	// Schedule is the delay before each retry: retry k waits
	// Schedule[min(k-1, len-1)]. Default 10 s, 60 s, 300 s, 600 s
	// (webhooks.retry_schedule).
	Schedule []time.Duration
	// MaxAttempts is how many attempts a delivery gets before it is dead.
	// Default 50 (webhooks.max_attempts).
	MaxAttempts int
	// Jitter is the largest fraction of a delay added at random; it is
	// never subtracted, so no retry comes before its schedule. Default
	// 0.1; negative disables it. MaxJitter caps it (default 60 s).
	Jitter    float64
	MaxJitter time.Duration
	// MaxRetryAfter caps how far a Retry-After header may push a retry.
	// Default 600 s.
	MaxRetryAfter time.Duration
	// Concurrency caps requests in flight in total, PerEndpoint per
	// endpoint. Defaults 32 and 8.
	Concurrency int
	PerEndpoint int
	// BusyRate caps the sends per second, across endpoints, while the
	// till is busy (store.DB.Busy: an API write in flight or just ended),
	// so a backlog drain does not take the CPU from invoices and
	// payments; at other times the relay runs at full speed. Default
	// 500; negative turns the throttle off.
	BusyRate float64
	// Prefetch is how many claimed deliveries may wait per endpoint for a
	// free worker, so workers keep sending while the relay records a batch
	// of results: the loop claims nothing while that batch commits, and
	// with synchronous=FULL a commit waits for fsync, which on eMMC or a
	// busy disk takes milliseconds. An endpoint's queue is refilled once
	// it is half empty, so claims come in batches. Claims are held in
	// memory (see claim), so a deep queue costs neither a lease nor a late
	// re-send after a crash; each queued delivery holds its body (about
	// 1.3 KiB for a 1 KiB event: 16 endpoints' full queues, ~11 MiB).
	// Default 512 (at 256, workers sat idle ~5% of a loopback drain
	// waiting for a 20 ms batch to commit; at 512, ~1%).
	Prefetch int
	// BatchSize caps results acknowledged in one transaction. Default 1024.
	BatchSize int
	// AckDelay is how long a result may wait to be recorded together with
	// others: each commit (an fsync, and a transaction's fixed cost)
	// then carries hundreds of results at full speed. While the till is
	// busy (store.DB.Busy) a quarter of it, so the relay's transactions
	// stay short when the API writes. A FIFO lane's head and an offline
	// store's probes are recorded at once: their lane claims nothing
	// more until then. Default 20 ms.
	AckDelay time.Duration
	// Poll is how often the relay looks for work it was not told about
	// (an enqueue without Notify). Default 250 ms.
	Poll time.Duration
	// ProbeInterval is how often an offline store retries one delivery
	// per endpoint. Default 30 s.
	ProbeInterval time.Duration
	// OfflineWindow is how recent an endpoint's last result must be to
	// count as evidence for or against "the store is offline". Default 5 min.
	OfflineWindow time.Duration
	// RetainDelivered and RetainDead are how long finished deliveries are
	// kept. Defaults 7 and 30 days. Events go with their last delivery,
	// and after RetainDead when they had none.
	RetainDelivered time.Duration
	RetainDead      time.Duration
	// RetentionInterval is how often retention runs once it has caught
	// up; RetentionBatch is rows deleted per transaction. Defaults 1 h,
	// 1000.
	RetentionInterval time.Duration
	RetentionBatch    int
	// DisableAfter is the circuit breaker: an endpoint whose attempts
	// have all failed for this long is disabled (disabled_reason
	// "failing") and endpoint.disabled is sent. Default 5 days (Svix's
	// rule); negative turns the breaker off (webhooks.disable_after = "0s").
	// Attempts not spent while the store is offline never count.
	DisableAfter time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if len(o.Schedule) == 0 {
		o.Schedule = []time.Duration{10 * time.Second, 60 * time.Second, 300 * time.Second, 600 * time.Second}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 50
	}
	if o.Jitter == 0 {
		o.Jitter = 0.1
	}
	if o.MaxJitter <= 0 {
		o.MaxJitter = time.Minute
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 600 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.PerEndpoint <= 0 {
		o.PerEndpoint = 8
	}
	if o.BusyRate == 0 {
		o.BusyRate = 500
	}
	if o.Prefetch <= 0 {
		o.Prefetch = 512
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1024
	}
	if o.AckDelay <= 0 {
		o.AckDelay = 20 * time.Millisecond
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = 30 * time.Second
	}
	if o.OfflineWindow <= 0 {
		o.OfflineWindow = 5 * time.Minute
	}
	if o.RetainDelivered <= 0 {
		o.RetainDelivered = 7 * 24 * time.Hour
	}
	if o.RetainDead <= 0 {
		o.RetainDead = 30 * 24 * time.Hour
	}
	if o.RetentionInterval <= 0 {
		o.RetentionInterval = time.Hour
	}
	if o.RetentionBatch <= 0 {
		o.RetentionBatch = 1000
	}
	if o.DisableAfter == 0 {
		o.DisableAfter = 5 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Delay returns how long to wait after attempt n (1-based) failed, given
// the response's Retry-After (0 if none): the schedule's step plus added
// jitter, or the Retry-After (capped at MaxRetryAfter) when that is later.
func (o Options) Delay(n int, retryAfter time.Duration) time.Duration {
	if len(o.Schedule) == 0 {
		o = o.withDefaults()
	}
	d := o.Schedule[min(max(n-1, 0), len(o.Schedule)-1)]
	if o.Jitter > 0 {
		if j := min(time.Duration(float64(d)*o.Jitter), o.MaxJitter); j > 0 {
			d += rand.N(j + 1)
		}
	}
	if ra := min(retryAfter, o.MaxRetryAfter); ra > d {
		d = ra
	}
	return d
}
