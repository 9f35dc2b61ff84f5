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

// TestPreAuthPartialReversal reserves 80.00 and releases the unused 25.00
// with a partial reversal (ZVT 06 23, PA00P015 §2.10), which books the
// other 55.00: the terminal's journal books 55.00, the reservation shows
// reserved/booked/released/remaining, and nothing can book or release it
// again. A partial reversal of all or more than the reservation is
// refused, naming amount, before anything is recorded.
func TestPreAuthPartialReversal(t *testing.T) {
	r := newRig(t, rigOptions{})
	ctx := context.Background()
	pre, err := r.svc.Create(ctx, payment.NewPayment{Type: payment.TypePreAuth, TerminalID: "t1", Amount: 8000}, caller("p1"))
	if err != nil {
		t.Fatal(err)
	}
	pre = final(t, r.svc, pre.ID, 10*time.Second)
	if pre.Status != payment.StatusCompleted || pre.Reservation == nil || pre.Reservation.Remaining != 8000 {
		t.Fatalf("preauth: %s, reservation %+v; want completed with 8000 remaining", pre.Status, pre.Reservation)
	}
	for _, amount := range []int64{8000, 9000} {
		_, err := r.svc.Create(ctx, payment.NewPayment{Type: payment.TypePreAuthPartialReversal, TerminalID: "t1",
			Amount: amount, OriginalPaymentID: pre.ID}, caller("too-much"))
		var ve *payment.ValidationError
		if !errors.As(err, &ve) || ve.Field != "amount" {
			t.Fatalf("partial reversal of %d of 8000: err=%v, want a validation error on amount", amount, err)
		}
	}
	pr, err := r.svc.Create(ctx, payment.NewPayment{Type: payment.TypePreAuthPartialReversal, TerminalID: "t1",
		Amount: 2500, OriginalPaymentID: pre.ID}, caller("p2"))
	if err != nil {
		t.Fatal(err)
	}
	pr = final(t, r.svc, pr.ID, 10*time.Second)
	if pr.Status != payment.StatusCompleted || pr.Amount != 2500 || pr.OriginalPaymentID != pre.ID {
		t.Fatalf("partial reversal: %+v", pr)
	}
	got, err := r.svc.Get(ctx, pre.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (payment.Reservation{Reserved: 8000, Booked: 5500, Released: 2500, Remaining: 0, ClosedBy: pr.ID}); got.Reservation == nil || *got.Reservation != want {
		t.Fatalf("reservation after the partial reversal: %+v, want %+v", got.Reservation, want)
	}
	for _, again := range []payment.NewPayment{
		{Type: payment.TypePreAuthCompletion, TerminalID: "t1", Amount: 100, OriginalPaymentID: pre.ID},
		{Type: payment.TypePreAuthPartialReversal, TerminalID: "t1", Amount: 100, OriginalPaymentID: pre.ID},
		{Type: payment.TypePreAuthReversal, TerminalID: "t1", OriginalPaymentID: pre.ID},
	} {
		_, err := r.svc.Create(ctx, again, caller("again-"+string(again.Type)))
		var ve *payment.ValidationError
		if !errors.As(err, &ve) || ve.Field != "original_payment_id" {
			t.Fatalf("%s after the partial reversal: err=%v, want original_payment_id refused", again.Type, err)
		}
	}
	var bookings []int64
	for _, e := range r.sim.Journal() {
		if e.Kind == string(terminal.Booking) {
			bookings = append(bookings, e.Amount)
		}
	}
	if len(bookings) != 1 || bookings[0] != 5500 {
		t.Fatalf("terminal bookings %v, want [5500]", bookings)
	}
	es := events(t, r.db)
	if last := es[len(es)-1]; last.Type != payment.EventCompleted || last.Data.Type != payment.TypePreAuthPartialReversal {
		t.Fatalf("last event %s of %s, want payment.completed of the partial reversal", last.Type, last.Data.Type)
	}
}
