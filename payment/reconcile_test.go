//go:build linux || darwin

package payment_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/store/storetest"
)

// fakeTerminal is a device.Terminal whose transactions the test scripts.
type fakeTerminal struct {
	authorize func(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error)
	repeat    func(ctx context.Context, h device.TxEventHandler) (device.TxResult, error)
	reverse   func(ctx context.Context, receiptNo int, h device.TxEventHandler) (device.TxResult, error)
	refund    func(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) // default authorize

	mu        sync.Mutex
	authCalls int
	reversals []int
}

func (f *fakeTerminal) Register(context.Context) error { return nil }
func (f *fakeTerminal) Authorize(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	f.mu.Lock()
	f.authCalls++
	f.mu.Unlock()
	return f.authorize(ctx, c, h)
}
func (f *fakeTerminal) Refund(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	if f.refund != nil {
		return f.refund(ctx, c, h)
	}
	return f.authorize(ctx, c, h)
}
func (f *fakeTerminal) Reverse(ctx context.Context, receiptNo int, h device.TxEventHandler) (device.TxResult, error) {
	f.mu.Lock()
	f.reversals = append(f.reversals, receiptNo)
	f.mu.Unlock()
	return f.reverse(ctx, receiptNo, h)
}
func (f *fakeTerminal) Abort(context.Context) error { return nil }
func (f *fakeTerminal) EndOfDay(context.Context, device.TxEventHandler) (device.TxResult, error) {
	return device.TxResult{Outcome: device.Approved}, nil
}
func (f *fakeTerminal) Status(context.Context) (device.TerminalStatus, error) {
	return device.TerminalStatus{}, nil
}
func (f *fakeTerminal) RepeatLastResult(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	return f.repeat(ctx, h)
}
func (f *fakeTerminal) LogOff(context.Context) error { return nil }

var errLineLost = fmt.Errorf("read: %w", device.ErrDisconnected)

// approvedThenLost persists an approval of trace 10, receipt 7, then
// loses the line: the payment is in doubt.
func approvedThenLost(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	info := &device.TxInfo{Amount: c.Amount, ReceiptNo: 7, Trace: 10, CardName: "Girocard", PAN: "6799********0019"}
	if err := h(ctx, device.TxEvent{Kind: device.EventStatusInfo, Info: info}); err != nil {
		return device.TxResult{}, err
	}
	return device.TxResult{}, errLineLost
}

func lostBeforeResult(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	_ = h(ctx, device.TxEvent{Kind: device.EventIntermediate, Status: 0x0A, Text: "insert card"})
	return device.TxResult{}, errLineLost
}

func lastIs(i *device.TxInfo) func(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	return func(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
		if i == nil {
			return device.TxResult{Outcome: device.Declined, Code: 0x83}, nil
		}
		_ = h(ctx, device.TxEvent{Kind: device.EventStatusInfo, Info: i})
		return device.TxResult{Outcome: device.Approved, Info: i}, nil
	}
}

func reverseWith(outcome device.Outcome) func(ctx context.Context, receiptNo int, h device.TxEventHandler) (device.TxResult, error) {
	return func(ctx context.Context, receiptNo int, h device.TxEventHandler) (device.TxResult, error) {
		if outcome != device.Approved {
			return device.TxResult{Outcome: outcome, Code: 0xB5, Message: "reversal not possible"}, nil
		}
		i := &device.TxInfo{Amount: 100, ReceiptNo: 8, Trace: 11, OrigTrace: 10}
		if err := h(ctx, device.TxEvent{Kind: device.EventStatusInfo, Info: i}); err != nil {
			return device.TxResult{}, err
		}
		return device.TxResult{Outcome: device.Approved, Info: i}, nil
	}
}

// persistThenHang persists info (if any) and then hangs until the
// service stops, as if the process died there.
func persistThenHang(info *device.TxInfo) func(context.Context, device.Charge, device.TxEventHandler) (device.TxResult, error) {
	return func(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) {
		if info != nil {
			if err := h(ctx, device.TxEvent{Kind: device.EventStatusInfo, Info: info}); err != nil {
				return device.TxResult{}, err
			}
		} else {
			_ = h(ctx, device.TxEvent{Kind: device.EventIntermediate, Status: 0x0A, Text: "insert card"})
		}
		<-ctx.Done()
		return device.TxResult{}, ctx.Err()
	}
}

// runService runs svc until the returned stop is called.
func runService(t *testing.T, svc *payment.Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	waitReady(t, svc)
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// TestReconcile covers reconcile's decisions at start for a payment a
// stopped process left in progress, by what it had recorded and what
// the terminal's Repeat Receipt reports.
func TestReconcile(t *testing.T) {
	approved := &device.TxInfo{Amount: 100, ReceiptNo: 7, Trace: 10, CardName: "Girocard", PAN: "6799********0019"}
	for _, tc := range []struct {
		name       string
		recorded   *device.TxInfo
		last       *device.TxInfo
		reverse    device.Outcome
		resolution payment.Resolution
		events     []string
		reversals  []int
	}{
		{"NothingAcknowledged", nil, &device.TxInfo{Trace: 9, ReceiptNo: 6},
			"", payment.ResolutionNotCharged, []string{payment.EventTimeout}, nil},
		{"Declined", &device.TxInfo{ResultCode: 0x05, Trace: 10}, &device.TxInfo{Trace: 10, ResultCode: 0x05},
			"", payment.ResolutionNotCharged, []string{payment.EventTimeout}, nil},
		{"CommittedIsReversed", approved, &device.TxInfo{Trace: 10, ReceiptNo: 7, Amount: 100},
			device.Approved, payment.ResolutionReversed, []string{payment.EventTimeout, payment.EventReversed}, []int{7}},
		{"AlreadyReversed", approved, &device.TxInfo{Trace: 11, ReceiptNo: 8, OrigTrace: 10},
			"", payment.ResolutionReversed, []string{payment.EventTimeout, payment.EventReversed}, nil},
		{"TerminalReversedItself", approved, &device.TxInfo{Trace: 9, ReceiptNo: 6},
			"", payment.ResolutionNotCharged, []string{payment.EventTimeout}, nil},
		{"ErrUnknownNewer", approved, &device.TxInfo{Trace: 12, ReceiptNo: 9},
			"", payment.ResolutionNeedsReview, []string{payment.EventTimeout}, nil},
		{"ErrNoLastTransaction", approved, nil,
			"", payment.ResolutionNeedsReview, []string{payment.EventTimeout}, nil},
		{"ErrReversalRefused", approved, &device.TxInfo{Trace: 10, ReceiptNo: 7},
			device.Declined, payment.ResolutionNeedsReview, []string{payment.EventTimeout}, []int{7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := storetest.Open(t)
			opts := payment.Options{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}

			// 1. A payment in progress when the process stops.
			first := &fakeTerminal{authorize: persistThenHang(tc.recorded), repeat: lastIs(nil)}
			opts.Terminals = []payment.Terminal{{ID: "t1", Device: first}}
			svc := payment.New(db, opts)
			stop := runService(t, svc)
			p, err := svc.Create(context.Background(), sale(100), caller("k"))
			if err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(5 * time.Second); ; {
				got, _ := svc.Get(context.Background(), p.ID)
				if got.Status == payment.StatusInProgress && (tc.recorded == nil || got.TraceNumber == tc.recorded.Trace) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("payment never got in progress: %+v", got)
				}
				time.Sleep(5 * time.Millisecond)
			}
			stop()
			if got, _ := svc.Get(context.Background(), p.ID); got.Status != payment.StatusInProgress {
				t.Fatalf("left %s, want in_progress", got.Status)
			}

			// 2. The next start reconciles it before taking new work.
			f := &fakeTerminal{authorize: persistThenHang(nil), repeat: lastIs(tc.last), reverse: reverseWith(tc.reverse)}
			opts.Terminals = []payment.Terminal{{ID: "t1", Device: f}}
			svc = payment.New(db, opts)
			runService(t, svc)
			p, err = svc.Get(context.Background(), p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != payment.StatusTimeout || p.Resolution != tc.resolution {
				t.Fatalf("status %s resolution %s, want timeout %s (evidence %+v)", p.Status, p.Resolution, tc.resolution, p.Evidence)
			}
			if p.Evidence == nil || p.Evidence.Reason == "" {
				t.Fatalf("no evidence: %+v", p)
			}
			if got := eventTypes(events(t, db)); !slices.Equal(got, tc.events) {
				t.Fatalf("events=%v, want %v", got, tc.events)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if !slices.Equal(f.reversals, tc.reversals) {
				t.Fatalf("reversals=%v, want %v", f.reversals, tc.reversals)
			}
		})
	}
}

// TestLineLost: when the line goes mid-payment, the cashier gets a final
// status at once: failed and not charged if no approval was recorded
// (the terminal cannot have committed), else timeout, then reconciled.
func TestLineLost(t *testing.T) {
	t.Run("BeforeApproval", func(t *testing.T) {
		db := storetest.Open(t)
		f := &fakeTerminal{authorize: lostBeforeResult, repeat: lastIs(nil)}
		svc := payment.New(db, payment.Options{Terminals: []payment.Terminal{{ID: "t1", Device: f}},
			RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
		runService(t, svc)
		p, err := svc.Create(context.Background(), sale(100), caller("k"))
		if err != nil {
			t.Fatal(err)
		}
		p = final(t, svc, p.ID, 5*time.Second)
		if p.Status != payment.StatusFailed || p.Resolution != payment.ResolutionNotCharged {
			t.Fatalf("status %s resolution %s", p.Status, p.Resolution)
		}
		if got := eventTypes(events(t, db)); !slices.Equal(got, []string{payment.EventFailed}) {
			t.Fatalf("events %v", got)
		}
		waitReady(t, svc)
	})
	t.Run("AfterApproval", func(t *testing.T) {
		db := storetest.Open(t)
		f := &fakeTerminal{authorize: approvedThenLost, repeat: lastIs(&device.TxInfo{Trace: 10, ReceiptNo: 7}),
			reverse: reverseWith(device.Approved)}
		svc := payment.New(db, payment.Options{Terminals: []payment.Terminal{{ID: "t1", Device: f}},
			RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
		runService(t, svc)
		p, err := svc.Create(context.Background(), sale(100), caller("k"))
		if err != nil {
			t.Fatal(err)
		}
		if p = final(t, svc, p.ID, 5*time.Second); p.Status != payment.StatusTimeout {
			t.Fatalf("status %s", p.Status)
		}
		if p = resolved(t, svc, p.ID, 5*time.Second); p.Resolution != payment.ResolutionReversed {
			t.Fatalf("resolution %s", p.Resolution)
		}
		if got := eventTypes(events(t, db)); !slices.Equal(got, []string{payment.EventTimeout, payment.EventReversed}) {
			t.Fatalf("events %v", got)
		}
	})
}

// TestReconcileBeforeNewWork: while the terminal cannot say what
// happened, it takes no new payment.
func TestReconcileBeforeNewWork(t *testing.T) {
	db := storetest.Open(t)
	var (
		mu      sync.Mutex
		answer  bool
		repeats int
	)
	f := &fakeTerminal{authorize: approvedThenLost, reverse: reverseWith(device.Approved),
		repeat: func(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
			mu.Lock()
			defer mu.Unlock()
			repeats++
			if !answer {
				return device.TxResult{}, fmt.Errorf("repeat: %w", device.ErrTimeout)
			}
			return lastIs(&device.TxInfo{Trace: 10, ReceiptNo: 7})(ctx, h)
		}}
	svc := payment.New(db, payment.Options{Terminals: []payment.Terminal{{ID: "t1", Device: f}},
		RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitReady(t, svc)
	p, err := svc.Create(ctx, sale(100), caller("a"))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		mu.Lock()
		n := repeats
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("reconcile never retried")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err = svc.Create(ctx, sale(200), caller("b"))
	if !errors.Is(err, payment.ErrTerminalOffline) && !errors.Is(err, payment.ErrTerminalBusy) {
		t.Fatalf("new payment during reconcile: %v", err)
	}
	if st, _ := svc.Terminal("t1"); st.State != "error" || st.LastError == "" {
		t.Fatalf("terminal state %+v", st)
	}
	mu.Lock()
	answer = true
	mu.Unlock()
	if p = resolved(t, svc, p.ID, 5*time.Second); p.Resolution != payment.ResolutionReversed {
		t.Fatalf("resolution %s", p.Resolution)
	}
	waitReady(t, svc)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.authCalls != 1 {
		t.Fatalf("%d authorizations, want 1", f.authCalls)
	}
}

// TestLineDroppedMidPayment: the simulator hangs up during a sale; the
// payment is reconciled when the line is back, and nothing is charged.
func TestLineDroppedMidPayment(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.sim.(zvtSim).DropLineNextTransaction()
	p, err := r.svc.Create(context.Background(), sale(800), caller("drop"))
	if err != nil {
		t.Fatal(err)
	}
	p = resolved(t, r.svc, p.ID, 15*time.Second)
	if p.Status != payment.StatusFailed || p.Resolution != payment.ResolutionNotCharged {
		t.Fatalf("status %s resolution %s (%s)", p.Status, p.Resolution, p.ResultText)
	}
	waitReady(t, r.svc)
	p, err = r.svc.Create(context.Background(), sale(900), caller("after"))
	if err != nil {
		t.Fatal(err)
	}
	if p = final(t, r.svc, p.ID, 10*time.Second); p.Status != payment.StatusCompleted {
		t.Fatalf("sale after the drop: %s", p.Status)
	}
	if j := r.sim.Journal(); len(j) != 1 || j[0].Amount != 900 {
		t.Fatalf("journal %+v", j)
	}
}
