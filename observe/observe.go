package observe

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
)

// Metric names.
const (
	PaymentsTotal         = "posgate_payments_total"                       // {outcome}
	FiscalizationsTotal   = "posgate_invoice_fiscalizations_total"         // {state}
	PrintJobsTotal        = "posgate_print_jobs_total"                     // {outcome}
	DeliveryAttemptsTotal = "posgate_webhook_delivery_attempts_total"      // {class}
	DeviceStateChanges    = "posgate_device_state_changes_total"           // {device,state}
	TaxServiceDuration    = "posgate_tax_service_request_duration_seconds" // histogram {operation,outcome}
	InvoicesIssuedTotal   = "posgate_invoices_issued_total"
	PaymentsReversedTotal = "posgate_payments_reversed_total"
	TailerErrorsTotal     = "posgate_metrics_tail_errors_total"
)

func counter(name string, labels ...string) *metrics.Counter {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i] + "=" + strconv.Quote(labels[i+1]))
		}
		b.WriteByte('}')
	}
	return metrics.GetOrCreateCounter(b.String())
}

// TaxServiceRequest records one call to the tax service: operation
// (e.g. "register_invoice"), its outcome ("ok", "rejected", "error") and
// how long it took. The tax-service client calls it.
func TaxServiceRequest(operation, outcome string, d time.Duration) {
	metrics.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`%s{operation=%q,outcome=%q}`, TaxServiceDuration, operation, outcome), taxBuckets).Update(d.Seconds())
}

// DeviceStateChanged counts a device going online or offline.
func DeviceStateChanged(device, state string) {
	counter(DeviceStateChanges, "device", device, "state", state).Inc()
}

// event maps an event type to the counter it moves; nil for others.
func event(typ string) *metrics.Counter {
	kind, what, ok := strings.Cut(typ, ".")
	if !ok {
		return nil
	}
	switch kind {
	case "payment":
		switch what {
		case "completed", "failed", "cancelled", "timeout":
			return counter(PaymentsTotal, "outcome", what)
		case "reversed":
			return counter(PaymentsReversedTotal)
		}
	case "invoice":
		if what == "created" {
			return counter(InvoicesIssuedTotal)
		}
	case "fiscalization":
		return counter(FiscalizationsTotal, "state", what) // completed, dead_letter, …
	case "receipt":
		return counter(PrintJobsTotal, "outcome", what) // printed, retry, error
	}
	return nil
}

// Tailer moves the outcome counters from the store.
type Tailer struct {
	db       *sql.DB
	log      zerolog.Logger
	every    time.Duration
	eventSeq int64
	attempt  int64
	// finished and finishedID are the delivered-rows cursor: the last
	// (finished_at, id) counted. A cursor, not a set of ids: a store where
	// a million rows share one finished_at (a bulk update) must not cost a
	// million map entries, nor stall a LIMITed read on one millisecond.
	finished, finishedID int64
}

// NewTailer reads db (a read pool) every interval (default 2 s). Counting
// starts at what is committed now: counters are per process, as
// Prometheus expects.
func NewTailer(ctx context.Context, db *sql.DB, log zerolog.Logger, every time.Duration) (*Tailer, error) {
	if every <= 0 {
		every = 2 * time.Second
	}
	t := &Tailer{db: db, log: log, every: every}
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT COALESCE(MAX(seq), 0) FROM outbox_events),
		(SELECT COALESCE(MAX(id), 0) FROM outbox_attempts),
		(SELECT COALESCE(MAX(finished_at), 0) FROM outbox_deliveries WHERE state = 2)`).Scan(&t.eventSeq, &t.attempt, &t.finished)
	if err != nil {
		return nil, fmt.Errorf("metrics tailer: read start positions: %w", err)
	}
	// The last of those finished at that millisecond; the ones before it
	// are not new either.
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM outbox_deliveries WHERE state = 2 AND finished_at = ?`,
		t.finished).Scan(&t.finishedID); err != nil {
		return nil, fmt.Errorf("metrics tailer: read start positions: %w", err)
	}
	// Every outcome label appears from the start, at 0, so a dashboard's
	// rate() has a series before the first event.
	for _, o := range []string{"completed", "failed", "cancelled", "timeout"} {
		counter(PaymentsTotal, "outcome", o)
	}
	for _, o := range []string{"printed", "retry", "error"} {
		counter(PrintJobsTotal, "outcome", o)
	}
	counter(DeliveryAttemptsTotal, "class", "ok")
	return t, nil
}

// Run tails until ctx ends. It is the only goroutine touching t.
func (t *Tailer) Run(ctx context.Context) error {
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		if err := t.Poll(ctx); err != nil && ctx.Err() == nil {
			counter(TailerErrorsTotal).Inc()
			t.log.Warn().Err(err).Msg("metrics tail failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Poll reads what was committed since the last Poll and moves the
// counters. Run calls it; tests call it to avoid waiting.
func (t *Tailer) Poll(ctx context.Context) error {
	rows, err := t.db.QueryContext(ctx, `SELECT seq, type FROM outbox_events WHERE seq > ? ORDER BY seq LIMIT 10000`, t.eventSeq)
	if err != nil {
		return fmt.Errorf("tail events: %w", err)
	}
	for rows.Next() {
		var typ string
		if err := rows.Scan(&t.eventSeq, &typ); err != nil {
			rows.Close()
			return fmt.Errorf("tail events: %w", err)
		}
		if c := event(typ); c != nil {
			c.Inc()
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("tail events: %w", err)
	}
	// Attempts that did not deliver (the delivering one is on the
	// delivery row): class is the sender's error class, or http_NNN.
	rows, err = t.db.QueryContext(ctx, `SELECT id, error_class, status_code FROM outbox_attempts WHERE id > ? ORDER BY id LIMIT 10000`, t.attempt)
	if err != nil {
		return fmt.Errorf("tail attempts: %w", err)
	}
	for rows.Next() {
		var class string
		var status int
		if err := rows.Scan(&t.attempt, &class, &status); err != nil {
			rows.Close()
			return fmt.Errorf("tail attempts: %w", err)
		}
		if class == "" {
			class = "http_" + strconv.Itoa(status)
		}
		counter(DeliveryAttemptsTotal, "class", class).Inc()
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("tail attempts: %w", err)
	}
	// Delivered ones in (finish time, id) order after the cursor. A row
	// committed after the cursor passed it with the same millisecond and a
	// lower id is not counted: two batches finishing in one millisecond and
	// committing across a read, an undercount of one, never a double count.
	rows, err = t.db.QueryContext(ctx, deliveriesAfter, t.finished, t.finishedID, t.finished)
	if err != nil {
		return fmt.Errorf("tail deliveries: %w", err)
	}
	defer rows.Close()
	ok := counter(DeliveryAttemptsTotal, "class", "ok")
	for rows.Next() {
		var id, at int64
		if err := rows.Scan(&id, &at); err != nil {
			return fmt.Errorf("tail deliveries: %w", err)
		}
		t.finished, t.finishedID = at, id
		ok.Inc()
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("tail deliveries: %w", err)
	}
	return nil
}

// deliveriesAfter reads delivered rows after the cursor (finished_at,
// id). It is two index seeks, not `finished_at > ? OR (finished_at = ?
// AND id > ?)`: SQLite plans that OR as one range from finished_at = ?
// and then steps over every row of that millisecond, which on a store
// whose last bulk update finished 1,000,000 rows at once read the whole
// index every poll (60 ms of CPU each 2 s, and a read connection's page
// cache filled to its 2 MiB).
const deliveriesAfter = `SELECT id, finished_at FROM outbox_deliveries
		WHERE state = 2 AND finished_at = ? AND id > ?
	UNION ALL
	SELECT id, finished_at FROM outbox_deliveries
		WHERE state = 2 AND finished_at > ?
	ORDER BY finished_at, id LIMIT 10000`

// taxBuckets are the histogram's upper bounds in seconds: a tax service
// answers in tens of milliseconds when well, and the client gives up
// after seconds.
var taxBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
