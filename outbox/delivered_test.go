package outbox_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

// The deliveries of a batch are recorded in one statement per endpoint:
// each row still gets its own status, response snippet (bytes as the
// receiver sent them, not only UTF-8), attempt number and times, and the
// pending counter drops by exactly the rows delivered.
func TestDeliveredRecordsEachRow(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte("\xff\x00ok"))
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	ep := e.endpoint(srv.URL)
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = e.enqueue("invoice.created", `{"n":1}`)
	}
	e.run()
	ctx := context.Background()
	waitFor(t, 10*time.Second, "every delivery delivered", func() bool {
		ds, _, err := e.relay.Deliveries(ctx, outbox.DeliveryFilter{EndpointID: ep.ID, State: outbox.StateDelivered, Limit: 100})
		return err == nil && len(ds) == len(ids)
	})
	ds, _, err := e.relay.Deliveries(ctx, outbox.DeliveryFilter{EndpointID: ep.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var withBody int
	for _, d := range ds {
		if d.AttemptCount != 1 || d.FinishedAt == nil || len(d.Attempts) != 1 {
			t.Fatalf("delivery %s: attempts %d finished %v %+v", d.ID, d.AttemptCount, d.FinishedAt, d.Attempts)
		}
		a := d.Attempts[0]
		switch d.LastStatus {
		case http.StatusAccepted:
			withBody++
			if a.Response != "\uFFFD\x00ok" || a.StatusCode != 202 {
				t.Fatalf("delivery %s: response %q status %d, want the receiver's answer and 202", d.ID, a.Response, a.StatusCode)
			}
		case http.StatusOK:
			if a.Response != "" {
				t.Fatalf("delivery %s: response %q, want none", d.ID, a.Response)
			}
		default:
			t.Fatalf("delivery %s: last status %d", d.ID, d.LastStatus)
		}
		if a.StartedAt.IsZero() || a.N != 1 {
			t.Fatalf("delivery %s: attempt %+v", d.ID, a)
		}
	}
	if withBody != len(ids)/2 {
		t.Fatalf("%d deliveries answered with a body, want %d", withBody, len(ids)/2)
	}
	var raw int
	if err := e.db.Read.QueryRow("SELECT count(*) FROM outbox_deliveries WHERE last_response = x'ff006f6b'").Scan(&raw); err != nil || raw != len(ids)/2 {
		t.Fatalf("%d rows keep the receiver's exact bytes (%v), want %d", raw, err, len(ids)/2)
	}
	cs, err := e.relay.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := cs[ep.ID]; c.Pending != 0 {
		t.Fatalf("pending counter %d after everything was delivered, want 0", c.Pending)
	}
}
