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
	"github.com/posgate/posgate/store"
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

// storeReadOnly makes the store refuse every write (query_only, as a
// read-only or failing disk does: store.Unavailable) until the returned
// func lifts it.
func storeReadOnly(t *testing.T, r *rig) (lift func()) {
	t.Helper()
	if _, err := r.db.Write.Exec("PRAGMA query_only = 1"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := r.db.Write.Exec("PRAGMA query_only = 0"); err != nil {
			t.Fatal(err)
		}
	}
}

// A payment is recorded in_progress, with its deadline, in the one
// commit that creates it, and only then handed to the terminal (issue 17
// part 1: nothing else is written before the first byte). A payment that
// cannot be recorded is refused with store.Unavailable and never reaches
// the terminal; the terminal is free again for the next payment, which
// works once the store takes writes, without a restart.
func TestUnrecordedPaymentIsNotSent(t *testing.T) {
	ct := &countingTerminal{}
	r := newRig(t, rigOptions{timeout: 10 * time.Second, wrap: func(d device.Terminal) device.Terminal {
		ct.Terminal = d
		return ct
	}})
	lift := storeReadOnly(t, r)
	_, err := r.svc.Create(context.Background(), sale(1500), caller("unrecorded"))
	if !store.Unavailable(err) {
		t.Fatalf("Create while the store refuses the payment: %v, want a store-unavailable error", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := ct.sent.Load(); n != 0 {
		t.Fatalf("%d authorizations reached the terminal for a payment that was not recorded", n)
	}
	if j := r.sim.Journal(); len(j) != 0 {
		t.Fatalf("terminal journal %+v, want empty", j)
	}

	lift()
	p, err := r.svc.Create(context.Background(), sale(1600), caller("after-recovery"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != payment.StatusInProgress || p.StartedAt == nil || p.DeadlineAt == nil ||
		p.DeadlineAt.Sub(*p.StartedAt) != 10*time.Second {
		t.Fatalf("created payment %+v: want in_progress with a 10 s deadline from its start", p)
	}
	stored, err := r.svc.Get(context.Background(), p.ID)
	if err != nil || stored.Status != payment.StatusInProgress && !stored.Status.Final() {
		t.Fatalf("stored payment right after Create: %+v, %v", stored, err)
	}
	if got := final(t, r.svc, p.ID, 10*time.Second); got.Status != payment.StatusCompleted {
		t.Fatalf("payment after the store recovered: %s, want completed", got.Status)
	}
	if n := ct.sent.Load(); n != 1 {
		t.Fatalf("%d authorizations reached the terminal, want 1", n)
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
