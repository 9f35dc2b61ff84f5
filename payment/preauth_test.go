package payment_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/simulator/terminal"
)

// TestPreAuthorisation reserves 100.00, books 62.00 of it, refuses a second
// booking and a release of the closed reservation, and releases a second
// reservation whole; the terminal's journal agrees.
func TestPreAuthorisation(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := context.Background()
	run := func(req payment.NewPayment, key string) payment.Payment {
		t.Helper()
		p, err := r.svc.Create(ctx, req, caller(key))
		if err != nil {
			t.Fatalf("%s: %v", req.Type, err)
		}
		p = final(t, r.svc, p.ID, 10*time.Second)
		if p.Status != payment.StatusCompleted {
			t.Fatalf("%s: %s (%s)", req.Type, p.Status, p.ResultText)
		}
		return p
	}
	pre := run(payment.NewPayment{Type: payment.TypePreAuth, TerminalID: "t1", Amount: 10000}, "k1")
	if pre.ReceiptNumber == 0 {
		t.Fatalf("preauth without receipt number: %+v", pre)
	}
	book := run(payment.NewPayment{Type: payment.TypePreAuthCompletion, TerminalID: "t1", Amount: 6200,
		OriginalPaymentID: pre.ID}, "k2")
	if book.Amount != 6200 {
		t.Fatalf("booked %d", book.Amount)
	}
	for _, bad := range []payment.NewPayment{
		{Type: payment.TypePreAuthCompletion, TerminalID: "t1", Amount: 100, OriginalPaymentID: pre.ID},
		{Type: payment.TypePreAuthReversal, TerminalID: "t1", OriginalPaymentID: pre.ID},
		{Type: payment.TypeRefund, TerminalID: "t1", Amount: 100, OriginalPaymentID: pre.ID},
	} {
		_, err := r.svc.Create(ctx, bad, caller("k-"+string(bad.Type)))
		var ve *payment.ValidationError
		if !errors.As(err, &ve) || ve.Field != "original_payment_id" {
			t.Fatalf("%s of a closed preauth: err=%v", bad.Type, err)
		}
	}
	pre2 := run(payment.NewPayment{Type: payment.TypePreAuth, TerminalID: "t1", Amount: 4000}, "k3")
	_, err := r.svc.Create(ctx, payment.NewPayment{Type: payment.TypePreAuthCompletion, TerminalID: "t1",
		Amount: 4001, OriginalPaymentID: pre2.ID}, caller("k4"))
	var ve *payment.ValidationError
	if !errors.As(err, &ve) || ve.Field != "amount" {
		t.Fatalf("booking more than reserved: err=%v", err)
	}
	rel := run(payment.NewPayment{Type: payment.TypePreAuthReversal, TerminalID: "t1", OriginalPaymentID: pre2.ID}, "k5")
	if rel.Amount != 4000 {
		t.Fatalf("released %d", rel.Amount)
	}
	var booked, released int
	for _, e := range r.sim.Journal() {
		switch e.Kind {
		case string(terminal.Booking):
			booked++
			if e.Amount != 6200 {
				t.Fatalf("booking %+v", e)
			}
		case string(terminal.Release):
			released++
		}
	}
	if booked != 1 || released != 1 {
		t.Fatalf("journal: %d bookings, %d releases", booked, released)
	}
}
