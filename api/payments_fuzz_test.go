package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/payment"
)

// instantTerminal approves everything at once, for tests that exercise
// the API rather than the line.
type instantTerminal struct {
	mu    sync.Mutex
	trace int
}

func (f *instantTerminal) approve(ctx context.Context, amount int64, h device.TxEventHandler) (device.TxResult, error) {
	f.mu.Lock()
	f.trace++
	info := &device.TxInfo{Amount: amount, ReceiptNo: f.trace%9999 + 1, Trace: f.trace, CardName: "Girocard", PAN: "6799********0019"}
	f.mu.Unlock()
	if h != nil {
		if err := h(ctx, device.TxEvent{Kind: device.EventStatusInfo, Info: info}); err != nil {
			return device.TxResult{}, err
		}
	}
	return device.TxResult{Outcome: device.Approved, Info: info}, nil
}

func (f *instantTerminal) Register(context.Context) error { return nil }
func (f *instantTerminal) Authorize(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	return f.approve(ctx, c.Amount, h)
}
func (f *instantTerminal) Refund(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	return f.approve(ctx, c.Amount, h)
}
func (f *instantTerminal) Reverse(ctx context.Context, _ int, h device.TxEventHandler) (device.TxResult, error) {
	return f.approve(ctx, 0, h)
}
func (f *instantTerminal) Abort(context.Context) error { return nil }
func (f *instantTerminal) EndOfDay(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	return f.approve(ctx, 0, h)
}
func (f *instantTerminal) Status(context.Context) (device.TerminalStatus, error) {
	return device.TerminalStatus{}, nil
}
func (f *instantTerminal) RepeatLastResult(context.Context, device.TxEventHandler) (device.TxResult, error) {
	return device.TxResult{Outcome: device.Declined, Code: 0x83}, nil
}
func (f *instantTerminal) LogOff(context.Context) error { return nil }

// FuzzPaymentCreate: whatever the body, POST /v1/payments answers a
// created payment or a JSON error below 500, and never panics.
func FuzzPaymentCreate(f *testing.F) {
	for _, s := range []string{
		`{"type":"sale","terminal_id":"t1","amount":1234,"currency":"EUR","reference":"r"}`,
		`{"type":"refund","terminal_id":"t1","amount":1}`,
		`{"type":"reversal","original_payment_id":"pay_x"}`,
		`{"type":"preauth","terminal_id":"t1","amount":8000}`,
		`{"type":"preauth_completion","original_payment_id":"pay_x","amount":1}`,
		`{"type":"preauth_reversal","original_payment_id":"pay_x"}`,
		`{"type":"preauth_partial_reversal","original_payment_id":"pay_x","amount":2500}`,
		`{"type":"sale","terminal_id":"t1","amount":999999999999999999999}`,
		`{"type":"sale","terminal_id":"t1","amount":-5,"currency":"eur"}`,
		`{"type":"sale","terminal_id":"t1","amount":1,"reference":"\u0000"}`,
		`{"type":null,"terminal_id":["t1"],"amount":"1"}`,
		`[]`, `null`, `{}`, `{"type":"sale"}{}`, ``,
	} {
		f.Add(s)
	}
	var svc *payment.Service
	e := newEnvWith(f, func(d *api.Deps) {
		svc = payment.New(d.Store, payment.Options{Terminals: []payment.Terminal{{ID: "t1", Device: &instantTerminal{}}}})
		d.Payments = svc
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	f.Cleanup(func() { cancel(); <-done })
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, body string) {
		r := e.do(t, "POST", "/v1/payments", &e.pos, body, "Idempotency-Key", fmt.Sprint("fuzz-", n.Add(1)))
		if r.status >= 500 {
			t.Fatalf("%d for %q: %s", r.status, body, r.body)
		}
		if r.status == 201 {
			var p payment.Payment
			if err := json.Unmarshal(r.body, &p); err != nil || p.ID == "" || p.Amount <= 0 {
				t.Fatalf("created %q from %q", r.body, body)
			}
			return
		}
		r.errorCode(t)
	})
}
