//go:build linux || darwin

package payment_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/simulator/terminal"
)

// countingTerminal counts the transactions that reach the driver.
type countingTerminal struct {
	device.Terminal
	sent atomic.Int32
}

func (c *countingTerminal) Authorize(ctx context.Context, p device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	c.sent.Add(1)
	return c.Terminal.Authorize(ctx, p, h)
}

// storeRefuses makes the store refuse the writes that match when (an SQL
// condition on NEW, the updated payments row) until the returned func
// lifts it, as a full disk refuses them.
func storeRefuses(t *testing.T, r *rig, name, when string) (lift func()) {
	t.Helper()
	_, err := r.db.Write.Exec(`CREATE TRIGGER ` + name + ` BEFORE UPDATE ON payments WHEN ` + when +
		` BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := r.db.Write.Exec(`DROP TRIGGER ` + name); err != nil {
			t.Fatal(err)
		}
	}
}

// A payment whose start (in_progress) cannot be recorded never reaches
// the terminal: it ends failed and not charged, and the next payment
// works once the store takes writes again, without a restart. Before,
// the request went out first and the transition committed beside it.
func TestUnrecordedStartIsNotSent(t *testing.T) {
	ct := &countingTerminal{}
	r := newRig(t, rigOptions{timeout: 10 * time.Second, wrap: func(d device.Terminal) device.Terminal {
		ct.Terminal = d
		return ct
	}})
	lift := storeRefuses(t, r, "no_start", "NEW.status = 'in_progress'")
	p, err := r.svc.Create(context.Background(), sale(1500), caller("unrecorded-start"))
	if err != nil {
		t.Fatal(err)
	}
	got := final(t, r.svc, p.ID, 10*time.Second)
	if got.Status != payment.StatusFailed || got.Resolution != payment.ResolutionNotCharged {
		t.Fatalf("payment whose start was not recorded: %s/%s, want failed/not_charged", got.Status, got.Resolution)
	}
	if n := ct.sent.Load(); n != 0 {
		t.Fatalf("%d authorizations reached the terminal for a payment whose start was not recorded", n)
	}
	if j := r.sim.Journal(); len(j) != 0 {
		t.Fatalf("terminal journal %+v, want empty", j)
	}

	lift()
	p, err = r.svc.Create(context.Background(), sale(1600), caller("after-recovery"))
	if err != nil {
		t.Fatal(err)
	}
	if got := final(t, r.svc, p.ID, 10*time.Second); got.Status != payment.StatusCompleted {
		t.Fatalf("payment after the store recovered: %s, want completed", got.Status)
	}
}

// When not even the failure can be recorded, the payment stays pending,
// nothing reaches the terminal, and it ends failed by itself once the
// store takes writes again; the terminal then takes the next payment.
func TestUnrecordedStartRecovers(t *testing.T) {
	ct := &countingTerminal{}
	r := newRig(t, rigOptions{timeout: 10 * time.Second, wrap: func(d device.Terminal) device.Terminal {
		ct.Terminal = d
		return ct
	}})
	lift := storeRefuses(t, r, "no_update", "1")
	p, err := r.svc.Create(context.Background(), sale(1700), caller("no-writes"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if got, err := r.svc.Get(context.Background(), p.ID); err != nil || got.Status != payment.StatusPending {
		t.Fatalf("payment while the store refuses every update: %+v, %v; want pending", got, err)
	}
	if n := ct.sent.Load(); n != 0 {
		t.Fatalf("%d authorizations reached the terminal while the store refused writes", n)
	}
	lift()
	got := final(t, r.svc, p.ID, 10*time.Second)
	if got.Status != payment.StatusFailed || got.Resolution != payment.ResolutionNotCharged || ct.sent.Load() != 0 {
		t.Fatalf("after the store recovered: %s/%s with %d sent, want failed/not_charged, 0 sent", got.Status, got.Resolution, ct.sent.Load())
	}
	p, err = r.svc.Create(context.Background(), sale(1800), caller("next"))
	if err != nil {
		t.Fatal(err)
	}
	if got := final(t, r.svc, p.ID, 10*time.Second); got.Status != payment.StatusCompleted {
		t.Fatalf("next payment: %s, want completed", got.Status)
	}
}

// storeBusyOnStatus refuses writes (query_only, as a read-only or failing
// disk does: store.Unavailable) from the first Status-Information of a
// sale until lift has passed, and counts the Status-Informations the
// payment layer was handed.
type storeBusyOnStatus struct {
	device.Terminal
	setRO    func(on bool)
	lift     time.Duration
	statuses atomic.Int32
}

func (s *storeBusyOnStatus) Authorize(ctx context.Context, p device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	return s.Terminal.Authorize(ctx, p, func(ctx context.Context, e device.TxEvent) error {
		if e.Kind == device.EventStatusInfo {
			if s.statuses.Add(1) == 1 {
				s.setRO(true)
				time.AfterFunc(s.lift, func() { s.setRO(false) })
			}
		}
		return h(ctx, e)
	})
}

// Issue 12 part 2, "repeat later": a store that cannot take the
// Status-Information for a moment makes the driver answer 84 9C
// (PA00P015 §2.2.6) instead of refusing it; the simulator sends it again
// after its re-poll wait, the store takes it then, and the sale completes,
// charged once. Before, the store error refused the Status-Information
// (84 66), and the terminal reversed a good payment.
func TestStatusInfoRetryLaterWhileStoreBusy(t *testing.T) {
	var db func(on bool)
	sb := &storeBusyOnStatus{lift: 700 * time.Millisecond, setRO: func(on bool) { db(on) }}
	r := newRig(t, rigOptions{timeout: 20 * time.Second, sim: terminal.Options{Repoll: 500 * time.Millisecond},
		wrap: func(d device.Terminal) device.Terminal {
			sb.Terminal = d
			return sb
		}})
	db = func(on bool) {
		v := "0"
		if on {
			v = "1"
		}
		if _, err := r.db.Write.Exec("PRAGMA query_only = " + v); err != nil {
			t.Errorf("query_only %s: %v", v, err)
		}
	}
	p, err := r.svc.Create(context.Background(), sale(2100), caller("busy-store"))
	if err != nil {
		t.Fatal(err)
	}
	got := final(t, r.svc, p.ID, 15*time.Second)
	if got.Status != payment.StatusCompleted || got.ReceiptNumber == 0 {
		t.Fatalf("sale whose Status-Information met a busy store: %s (%s), receipt %d; want completed", got.Status, got.ResultText, got.ReceiptNumber)
	}
	if n := sb.statuses.Load(); n < 2 {
		t.Fatalf("the terminal sent the Status-Information %d time(s); want it again after 84 9C", n)
	}
	j := r.sim.Journal()
	if len(j) != 1 || !j[0].Approved || j[0].Reversed || j[0].Amount != 2100 {
		t.Fatalf("terminal journal %+v, want one approved, unreversed sale of 2100", j)
	}
}
