package observe_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/posgate/posgate/observe"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/store/storetest"
	"github.com/posgate/posgate/webhook"
)

func value(t *testing.T, name string) float64 {
	t.Helper()
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			for _, c := range v {
				if c >= '0' && c <= '9' {
					f = f*10 + float64(c-'0')
				}
			}
			return f
		}
	}
	return -1
}

// The tailer counts what is committed after it started: events written
// through the outbox move the outcome counters, events from before do not.
func TestTailerCountsCommittedEvents(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	ep := webhook.New(db, storetest.MasterKey(t), webhook.NewSender(webhook.SenderOptions{}), webhook.Options{})
	relay := outbox.NewRelay(db, ep, zerolog.Nop(), outbox.Options{})
	enqueue := func(typ string) {
		if _, err := relay.Enqueue(ctx, outbox.Event{Type: typ, Data: []byte(`{}`), Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	enqueue("payment.completed") // before the tailer: not counted
	tl, err := observe.NewTailer(ctx, db.Read, zerolog.Nop(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	completed := `posgate_payments_total{outcome="completed"}`
	timeout := `posgate_payments_total{outcome="timeout"}`
	printed := `posgate_print_jobs_total{outcome="printed"}`
	c0, t0, p0 := value(t, completed), value(t, timeout), value(t, printed)
	if c0 < 0 || t0 < 0 || p0 < 0 {
		t.Fatalf("series missing before the first event: %v %v %v", c0, t0, p0)
	}
	enqueue("payment.completed")
	enqueue("payment.completed")
	enqueue("payment.timeout")
	enqueue("receipt.printed")
	enqueue("webhook.test")
	if err := tl.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := value(t, completed) - c0; got != 2 {
		t.Errorf("completed moved %v, want 2", got)
	}
	if got := value(t, timeout) - t0; got != 1 {
		t.Errorf("timeout moved %v, want 1", got)
	}
	if got := value(t, printed) - p0; got != 1 {
		t.Errorf("printed moved %v, want 1", got)
	}
	if err := tl.Poll(ctx); err != nil { // nothing new: nothing moves
		t.Fatal(err)
	}
	if got := value(t, completed) - c0; got != 2 {
		t.Errorf("a second poll moved completed to %v", got)
	}
}

func TestTaxServiceHistogramAndDeviceChanges(t *testing.T) {
	observe.TaxServiceRequest("register_invoice", "ok", 120*time.Millisecond)
	observe.DeviceStateChanged("p1", "offline")
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	out := buf.String()
	for _, want := range []string{
		`posgate_tax_service_request_duration_seconds_count{operation="register_invoice",outcome="ok"} `,
		`posgate_tax_service_request_duration_seconds_bucket{operation="register_invoice",outcome="ok",le="0.25"} 1`,
		`posgate_device_state_changes_total{device="p1",state="offline"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
}

// Many deliveries finishing in one millisecond (a bulk update) are each
// counted once, across polls of at most 10,000 rows, and the tailer keeps
// a cursor, not a set of ids: the 1 M-row daemon benchmark went from
// 72 MiB idle to 27 MiB when the set went.
func TestTailerCountsDeliveriesSharingAMillisecond(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	if _, err := db.Write.Exec(`PRAGMA foreign_keys = OFF`); err != nil {
		t.Fatal(err)
	}
	const ms = 1_700_000_000_000
	bulk := func(from, n int, at int64) {
		t.Helper()
		if _, err := db.Write.Exec(`WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO outbox_deliveries (id, event_seq, endpoint_id, state, next_attempt_at, created_at, finished_at)
			SELECT i, i, 'we_x', 2, 0, 0, ? FROM n`, from, from+n-1, at); err != nil {
			t.Fatal(err)
		}
	}
	bulk(1, 5_000, ms) // before the tailer: not counted
	tl, err := observe.NewTailer(ctx, db.Read, zerolog.Nop(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ok := `posgate_webhook_delivery_attempts_total{class="ok"}`
	before := value(t, ok)
	bulk(5_001, 25_000, ms+1) // 25,000 in one millisecond
	for i := 0; i < 4; i++ {
		if err := tl.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := value(t, ok) - before; got != 25_000 {
		t.Fatalf("counted %v deliveries, want 25000 (each once)", got)
	}
}

// The delivered-rows query seeks to the cursor within its millisecond
// instead of stepping over every row finished in it: after a bulk update
// of a million rows the old form read the whole index every poll.
func TestTailerSeeksPastTheCursor(t *testing.T) {
	db := storetest.Open(t)
	rows, err := db.Read.Query("EXPLAIN QUERY PLAN "+observe.DeliveriesAfter, int64(1_700_000_000_000), int64(5), int64(1_700_000_000_000))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(plan, "\n")
	for _, want := range []string{
		"INDEX outbox_deliveries_delivered (finished_at=? AND rowid>?)",
		"INDEX outbox_deliveries_delivered (finished_at>?)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("plan lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "SCAN outbox_deliveries") || strings.Contains(all, "TEMP B-TREE") {
		t.Errorf("plan scans or sorts:\n%s", all)
	}
}
