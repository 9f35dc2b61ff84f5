package outbox_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

// Issue 11 part 12: attempt numbers only ever grow. Today a recover
// started them at 1 again and two manual retries were both numbered 4.
func TestAttemptNumbersOnlyGrow(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 2
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	rcv := newReceiver(t, func(int, hit) int { return http.StatusInternalServerError })
	ep := e.endpoint(rcv.URL)
	e.run()
	start := time.Now().Add(-time.Second)
	e.enqueue("invoice.created", `{}`)
	ctx := context.Background()
	dead := func() bool { c, _ := e.relay.Counts(ctx); return c[ep.ID].Dead == 1 }
	waitFor(t, 5*time.Second, "dead after 2 attempts", dead)
	if n, err := e.relay.Recover(ctx, ep.ID, start); err != nil || n != 1 {
		t.Fatalf("Recover=%d, %v", n, err)
	}
	waitFor(t, 5*time.Second, "dead again after the recovered budget", func() bool { return len(rcv.deliveries()) == 4 && dead() })
	ds, _, err := e.relay.Deliveries(ctx, outbox.DeliveryFilter{EndpointID: ep.ID})
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %v, %v", ds, err)
	}
	for range 2 {
		if _, err := e.relay.Retry(ctx, ds[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	var got, max []int
	for _, h := range rcv.deliveries() {
		got, max = append(got, h.Attempt), append(max, h.MaxAttempts)
	}
	if want := []int{1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
		t.Fatalf("receiver saw attempts %v, want %v", got, want)
	}
	// max_attempts says where the automatic attempts end: 2, then 2
	// more after the recover; a manual attempt is one beyond.
	if want := []int{2, 2, 4, 4, 5, 6}; !slices.Equal(max, want) {
		t.Fatalf("receiver saw max_attempts %v, want %v", max, want)
	}
	d, err := e.relay.Delivery(ctx, ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var ns []int
	for _, a := range d.Attempts {
		ns = append(ns, a.N)
	}
	if want := []int{1, 2, 3, 4, 5, 6}; !slices.Equal(ns, want) || d.AttemptCount != 6 || d.State != outbox.StateDead {
		t.Fatalf("attempt log %v, count %d, state %s", ns, d.AttemptCount, d.State)
	}
}

// Unspent probes while the store is offline use up numbers too, so no
// two requests of one delivery carry the same number.
func TestProbeNumbersDoNotRepeat(t *testing.T) {
	opts := fastOptions()
	opts.MaxAttempts = 3
	e := newEnv(t, "", opts, webhook.SenderOptions{})
	r1 := newReceiver(t, nil)
	ep := e.endpoint(r1.URL)
	addr := r1.Listener.Addr().String()
	r1.Close()
	e.enqueue("invoice.created", `{}`)
	e.run()
	ctx := context.Background()
	waitFor(t, 5*time.Second, "a few probes", func() bool {
		var n int
		_ = e.db.Read.QueryRow("SELECT COUNT(*) FROM outbox_attempts WHERE spent = 0").Scan(&n)
		return n >= 3
	})
	n2 := relisten(t, addr)
	waitFor(t, 10*time.Second, "delivered after the outage", func() bool { c, _ := e.relay.Counts(ctx); return c[ep.ID].Pending == 0 && len(n2.deliveries()) == 1 })
	ds, _, _ := e.relay.Deliveries(ctx, outbox.DeliveryFilter{EndpointID: ep.ID})
	var ns []int
	for _, a := range ds[0].Attempts {
		ns = append(ns, a.N)
	}
	for i := 1; i < len(ns); i++ {
		if ns[i] <= ns[i-1] {
			t.Fatalf("attempt numbers %v repeat or go back", ns)
		}
	}
	if h := n2.deliveries()[0]; h.Attempt != ns[len(ns)-1] || h.MaxAttempts-h.Attempt != opts.MaxAttempts-1 {
		t.Fatalf("delivering attempt %d of %d (log %v): probes spent budget", h.Attempt, h.MaxAttempts, ns)
	}
}

var entryIDShape = regexp.MustCompile(`^evt_[0-9A-HJKMNP-TV-Z]{26}$`)

// Issue 11 part 12: the ping's entry_id has the shape of every other
// event's (today it was evt_ + 22 characters of base64url).
func TestPingEntryIDHasEventShape(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	rcv := newReceiver(t, nil)
	e.endpoint(rcv.URL)
	e.run()
	id := e.enqueue("invoice.created", `{}`)
	waitFor(t, 5*time.Second, "delivery", func() bool { return len(rcv.deliveries()) == 1 })
	var ping string
	for _, h := range rcv.all() {
		if h.Event == "ping" {
			ping = h.EntryID
		}
	}
	for _, got := range []string{ping, id} {
		if !entryIDShape.MatchString(got) {
			t.Fatalf("entry_id %q is not evt_ + a 26-character ULID", got)
		}
	}
}

// Issue 11 part 7, end to end: after create, patch and deliveries, no
// custom header value is anywhere in the data directory's files, read
// raw; the receiver still gets the real value on every delivery.
func TestHeaderValuesNeverInDataDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "posgate.db")
	e := newEnv(t, path, fastOptions(), webhook.SenderOptions{})
	rcv := newReceiver(t, func(n int, _ hit) int { return []int{500, 200}[min(n, 1)] }) // a retry too
	ctx := context.Background()
	const v1, v2 = "Bearer first-secret-value-123", "Bearer second-secret-value-456"
	c, _, err := e.hooks.Create(ctx, webhook.NewParams{URL: rcv.URL, Headers: map[string]string{"Authorization": v1}})
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"Authorization": v2, "X-Extra": "extra-secret-789"}
	if _, err := e.hooks.Update(ctx, c.ID, webhook.Patch{Headers: &h}); err != nil {
		t.Fatal(err)
	}
	stop := e.run()
	for range 3 {
		e.enqueue("invoice.created", `{}`)
	}
	waitFor(t, 5*time.Second, "deliveries", func() bool { c, _ := e.relay.Counts(ctx); return len(rcv.deliveries()) == 4 && c[c0(c)].Pending == 0 })
	for _, d := range rcv.deliveries() {
		if d.Header.Get("Authorization") != v2 || d.Header.Get("X-Extra") != "extra-secret-789" {
			t.Fatalf("receiver got %v", d.Header)
		}
	}
	check := func(when string) {
		t.Helper()
		ents, _ := os.ReadDir(dir)
		for _, ent := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, ent.Name()))
			for _, s := range []string{"first-secret-value-123", "second-secret-value-456", "extra-secret-789"} {
				if bytes.Contains(b, []byte(s)) {
					t.Fatalf("%s: %s holds %q", when, ent.Name(), s)
				}
			}
		}
	}
	check("while running")
	stop()
	e.db.Close()
	check("after close")
}

// c0 returns the only key of a one-endpoint counter map.
func c0(m map[string]outbox.Counts) string {
	for k := range m {
		return k
	}
	return ""
}
