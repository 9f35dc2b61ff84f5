//go:build linux || darwin

package payment_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/posgate/posgate/store/storetest"
)

// TestNoOverCredit: refunds and a reversal of one sale exclude each
// other, so the card is never credited more than the sale (issue 11
// part 2: sale 2000, refund 500, then a reversal used to credit 2500).
// It runs on the ZVT simulator and checks the terminal's own journal.
func TestNoOverCredit(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := context.Background()
	completed := func(p payment.Payment, err error) payment.Payment {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if p = final(t, r.svc, p.ID, 10*time.Second); p.Status != payment.StatusCompleted {
			t.Fatalf("%s %s: %s %s", p.Type, p.ID, p.Status, p.ResultText)
		}
		return p
	}
	s1 := completed(r.svc.Create(ctx, sale(2000), caller("oc-s1")))
	completed(r.svc.Create(ctx, payment.NewPayment{Type: payment.TypeRefund, TerminalID: "t1", Amount: 500,
		Currency: "EUR", OriginalPaymentID: s1.ID}, caller("oc-r1")))
	_, err := r.svc.Create(ctx, payment.NewPayment{Type: payment.TypeReversal, OriginalPaymentID: s1.ID}, caller("oc-v1"))
	if !errors.Is(err, payment.ErrHasRefunds) {
		t.Fatalf("reversal of a refunded sale: err=%v, want ErrHasRefunds", err)
	}

	// The converse: once reversed, a sale takes no refund.
	s2 := completed(r.svc.Create(ctx, sale(3000), caller("oc-s2")))
	completed(r.svc.Create(ctx, payment.NewPayment{Type: payment.TypeReversal, OriginalPaymentID: s2.ID}, caller("oc-v2")))
	_, err = r.svc.Create(ctx, payment.NewPayment{Type: payment.TypeRefund, TerminalID: "t1", Amount: 100,
		Currency: "EUR", OriginalPaymentID: s2.ID}, caller("oc-r2"))
	if !errors.Is(err, payment.ErrAlreadyReversed) {
		t.Fatalf("refund of a reversed sale: err=%v, want ErrAlreadyReversed", err)
	}

	// What the terminal credited, by its journal: 500 back on the first
	// sale (no reversal of it), 3000 on the second (no refund after).
	var kinds []string
	for _, e := range r.sim.Journal() {
		if !e.Approved {
			continue
		}
		kinds = append(kinds, e.Kind)
		if e.Kind == string(terminal.Reversal) && e.OrigRef == payRef(s1) {
			t.Fatalf("the terminal reversed the refunded sale: %+v", e)
		}
	}
	if want := []string{string(terminal.Sale), string(terminal.Refund), string(terminal.Sale), string(terminal.Reversal)}; !slices.Equal(kinds, want) {
		t.Fatalf("terminal journal %v, want %v", kinds, want)
	}
	ps, _, err := r.svc.List(ctx, payment.ListParams{})
	if err != nil || len(ps) != 4 {
		t.Fatalf("payments: %d, %v; the refused requests must record nothing", len(ps), err)
	}
}

// TestNoOverCreditUnresolved: a refund that may have credited (ended
// needs_review) blocks a reversal too, and a reversal that may have
// voided the sale blocks refunds.
func TestNoOverCreditUnresolved(t *testing.T) {
	db := storetest.Open(t)
	f := &fakeTerminal{
		authorize: approveAs(0, 7, 10),
		refund:    approveAs(1, 8, 11), // credits 1 minor unit more than asked
		reverse: func(ctx context.Context, receiptNo int, h device.TxEventHandler) (device.TxResult, error) {
			return device.TxResult{}, errors.New("not used")
		},
	}
	svc := payment.New(db, payment.Options{Terminals: []payment.Terminal{{ID: "t1", Device: f}},
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	runService(t, svc)
	ctx := context.Background()
	s, err := svc.Create(ctx, sale(1000), caller("u-s"))
	if err != nil {
		t.Fatal(err)
	}
	if s = final(t, svc, s.ID, 5*time.Second); s.Status != payment.StatusCompleted {
		t.Fatalf("sale %s", s.Status)
	}
	rf, err := svc.Create(ctx, payment.NewPayment{Type: payment.TypeRefund, TerminalID: "t1", Amount: 999,
		Currency: "EUR", OriginalPaymentID: s.ID}, caller("u-r"))
	if err != nil {
		t.Fatal(err)
	}
	if rf = final(t, svc, rf.ID, 5*time.Second); rf.Status == payment.StatusCompleted || rf.Resolution != payment.ResolutionNeedsReview {
		t.Fatalf("refund approved for 1000 of 999 asked: %s %s, want needs_review", rf.Status, rf.Resolution)
	}
	if rf.Evidence == nil || rf.Evidence.Terminal == nil || rf.Evidence.Terminal.Amount != 1000 {
		t.Fatalf("evidence %+v", rf.Evidence)
	}
	if _, err := svc.Create(ctx, payment.NewPayment{Type: payment.TypeReversal, OriginalPaymentID: s.ID}, caller("u-v")); !errors.Is(err, payment.ErrHasRefunds) {
		t.Fatalf("reversal after an unresolved refund: %v", err)
	}
	// The terminal's 1000, not the 999 asked, is what counts: nothing is
	// left to refund.
	var ve *payment.ValidationError
	if _, err := svc.Create(ctx, payment.NewPayment{Type: payment.TypeRefund, TerminalID: "t1", Amount: 1,
		Currency: "EUR", OriginalPaymentID: s.ID}, caller("u-r2")); !errors.As(err, &ve) || ve.Field != "amount" {
		t.Fatalf("refund beyond what the terminal credited: %v", err)
	}
}

// approveAs approves with a Status-Information whose amount is the
// charge's plus delta.
func approveAs(delta int64, receipt, trace int) func(context.Context, device.Charge, device.TxEventHandler) (device.TxResult, error) {
	return func(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) {
		i := &device.TxInfo{Amount: c.Amount + delta, ReceiptNo: receipt, Trace: trace}
		if err := h(ctx, device.TxEvent{Kind: device.EventStatusInfo, Info: i}); err != nil {
			return device.TxResult{}, err
		}
		return device.TxResult{Outcome: device.Approved, Info: i}, nil
	}
}

// TestReversalAmountCrossCheck: a reversal the terminal approves with
// another amount in its Status-Information ends needs_review with
// payment.needs_review, never completed, and does not mark the sale
// reversed; the sale then takes neither a refund nor another reversal.
func TestReversalAmountCrossCheck(t *testing.T) {
	db := storetest.Open(t)
	f := &fakeTerminal{
		authorize: approveAs(0, 7, 10),
		reverse: func(ctx context.Context, receiptNo int, h device.TxEventHandler) (device.TxResult, error) {
			i := &device.TxInfo{Amount: 250, ReceiptNo: 8, Trace: 11, OrigTrace: 10}
			if err := h(ctx, device.TxEvent{Kind: device.EventStatusInfo, Info: i}); err != nil {
				return device.TxResult{}, err
			}
			return device.TxResult{Outcome: device.Approved, Info: i}, nil
		},
	}
	svc := payment.New(db, payment.Options{Terminals: []payment.Terminal{{ID: "t1", Device: f}},
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	runService(t, svc)
	ctx := context.Background()
	s, err := svc.Create(ctx, sale(2000), caller("x-s"))
	if err != nil {
		t.Fatal(err)
	}
	if s = final(t, svc, s.ID, 5*time.Second); s.Status != payment.StatusCompleted {
		t.Fatalf("sale %s", s.Status)
	}
	v, err := svc.Create(ctx, payment.NewPayment{Type: payment.TypeReversal, OriginalPaymentID: s.ID}, caller("x-v"))
	if err != nil {
		t.Fatal(err)
	}
	v = final(t, svc, v.ID, 5*time.Second)
	if v.Status == payment.StatusCompleted || v.Resolution != payment.ResolutionNeedsReview {
		t.Fatalf("reversal reported 250 of 2000: %s %s, want needs_review", v.Status, v.Resolution)
	}
	if v.Evidence == nil || v.Evidence.Terminal == nil || v.Evidence.Terminal.Amount != 250 {
		t.Fatalf("evidence %+v", v.Evidence)
	}
	if got := eventTypes(events(t, db)); !slices.Equal(got, []string{payment.EventCompleted, payment.EventNeedsReview}) {
		t.Fatalf("events %v", got)
	}
	if s, _ = svc.Get(ctx, s.ID); s.Reversal != nil {
		t.Fatalf("sale marked reversed by a mismatched reversal: %+v", s.Reversal)
	}
	if _, err := svc.Create(ctx, payment.NewPayment{Type: payment.TypeReversal, OriginalPaymentID: s.ID}, caller("x-v2")); !errors.Is(err, payment.ErrAlreadyReversed) {
		t.Fatalf("second reversal: %v", err)
	}
	if _, err := svc.Create(ctx, payment.NewPayment{Type: payment.TypeRefund, TerminalID: "t1", Amount: 100,
		Currency: "EUR", OriginalPaymentID: s.ID}, caller("x-r")); !errors.Is(err, payment.ErrAlreadyReversed) {
		t.Fatalf("refund after a mismatched reversal: %v", err)
	}
}
