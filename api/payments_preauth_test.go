//go:build linux || darwin

package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/posgate/posgate/payment"
)

// TestPreAuthHTTP: a reservation, its booking, and the refusals a cashier
// sees as 400s naming the field.
func TestPreAuthHTTP(t *testing.T) {
	e := newPayEnv(t, payOptions{})
	pre := e.pay(t, `{"type":"preauth","terminal_id":"t1","amount":8000,"currency":"EUR"}`, "pre-1")
	if pre.Status != payment.StatusCompleted || pre.Type != payment.TypePreAuth || pre.ReceiptNumber == 0 {
		t.Fatalf("preauth %+v", pre)
	}
	for _, tc := range []struct{ body, field string }{
		{fmt.Sprintf(`{"type":"preauth_completion","original_payment_id":%q}`, pre.ID), "amount"},
		{fmt.Sprintf(`{"type":"preauth_completion","original_payment_id":%q,"amount":8001}`, pre.ID), "amount"},
		{`{"type":"preauth_completion","terminal_id":"t1","amount":1}`, "original_payment_id"},
		{fmt.Sprintf(`{"type":"preauth_reversal","original_payment_id":%q,"amount":1}`, pre.ID), "amount"},
		{`{"type":"preauth","terminal_id":"t1"}`, "amount"},
	} {
		r := e.do(t, "POST", "/v1/payments", &e.pos, tc.body, "Idempotency-Key", "bad-"+tc.body)
		if r.status != 400 || !strings.Contains(string(r.body), tc.field) {
			t.Fatalf("%s: %d %s, want 400 naming %s", tc.body, r.status, r.body, tc.field)
		}
	}
	book := e.pay(t, fmt.Sprintf(`{"type":"preauth_completion","original_payment_id":%q,"amount":5550}`, pre.ID), "book-1")
	if book.Status != payment.StatusCompleted || book.Amount != 5550 || book.TerminalID != "t1" {
		t.Fatalf("booking %+v", book)
	}
	r := e.do(t, "POST", "/v1/payments", &e.pos, fmt.Sprintf(`{"type":"preauth_reversal","original_payment_id":%q}`, pre.ID), "Idempotency-Key", "rel-1")
	if r.status != 400 || !strings.Contains(string(r.body), "original_payment_id") {
		t.Fatalf("release of a booked preauth: %d %s", r.status, r.body)
	}
}

// TestPreAuthPartialReversalHTTP: the unused part of a reservation is
// released with preauth_partial_reversal (ZVT 06 23), the rest booked;
// the reservation shows what is left (nothing), and bad amounts are 400s
// naming amount.
func TestPreAuthPartialReversalHTTP(t *testing.T) {
	e := newPayEnv(t, payOptions{})
	pre := e.pay(t, `{"type":"preauth","terminal_id":"t1","amount":6000,"currency":"EUR"}`, "pre-pr")
	for _, body := range []string{
		fmt.Sprintf(`{"type":"preauth_partial_reversal","original_payment_id":%q}`, pre.ID),
		fmt.Sprintf(`{"type":"preauth_partial_reversal","original_payment_id":%q,"amount":6000}`, pre.ID),
		fmt.Sprintf(`{"type":"preauth_partial_reversal","original_payment_id":%q,"amount":-5}`, pre.ID),
	} {
		r := e.do(t, "POST", "/v1/payments", &e.pos, body, "Idempotency-Key", "bad-"+body)
		if r.status != 400 || !strings.Contains(string(r.body), `"amount`) {
			t.Fatalf("%s: %d %s, want 400 naming amount", body, r.status, r.body)
		}
	}
	pr := e.pay(t, fmt.Sprintf(`{"type":"preauth_partial_reversal","original_payment_id":%q,"amount":1500}`, pre.ID), "pr-1")
	if pr.Status != payment.StatusCompleted || pr.Type != payment.TypePreAuthPartialReversal || pr.Amount != 1500 {
		t.Fatalf("partial reversal %+v", pr)
	}
	r := e.do(t, "GET", "/v1/payments/"+pre.ID, &e.pos, "")
	for _, want := range []string{`"reserved":6000`, `"booked":4500`, `"released":1500`, `"remaining":0`} {
		if !strings.Contains(string(r.body), want) {
			t.Fatalf("GET the preauth: %s lacks %s", r.body, want)
		}
	}
	r = e.do(t, "POST", "/v1/payments", &e.pos, fmt.Sprintf(`{"type":"preauth_completion","original_payment_id":%q,"amount":100}`, pre.ID), "Idempotency-Key", "book-after")
	if r.status != 400 || !strings.Contains(string(r.body), "original_payment_id") {
		t.Fatalf("booking after the partial reversal: %d %s", r.status, r.body)
	}
}
