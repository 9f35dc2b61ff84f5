package fiscal_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/store"
)

// counts returns how many invoices, counters, claims and events the
// store holds: a refused invoice must leave them all as they were.
func counts(t testing.TB, db *store.DB) [4]int {
	t.Helper()
	var c [4]int
	for i, q := range []string{"SELECT COUNT(*) FROM invoices", "SELECT COALESCE(SUM(last), 0) FROM invoice_counters",
		"SELECT COUNT(*) FROM invoice_card_payments", "SELECT COUNT(*) FROM outbox_events"} {
		if err := db.Read.QueryRow(q).Scan(&c[i]); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func cardSale(amount int64, paymentID string) fiscal.NewInvoice {
	return fiscal.NewInvoice{Type: fiscal.TypeSale,
		Items:    []fiscal.NewItem{{Name: "Coffee", Quantity: "1", UnitPrice: amount, VATRate: "21"}},
		Payments: []fiscal.NewPayment{{Type: fiscal.PayCard, Amount: amount, PaymentID: paymentID}}}
}

// TestCardPaymentMustMatch: an invoice's card payment links a real,
// completed sale in the invoice's currency, and invoices together never
// claim more of it than its amount (issue 11 part 3). Each refusal names
// the field and writes nothing.
func TestCardPaymentMustMatch(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	e.pays = map[string]fiscal.LinkedPayment{
		"pay_1234":     {ID: "pay_1234", Type: "sale", Status: "completed", Amount: 1234, Currency: "EUR"},
		"pay_pending":  {ID: "pay_pending", Type: "sale", Status: "in_progress", Amount: 5000, Currency: "EUR"},
		"pay_failed":   {ID: "pay_failed", Type: "sale", Status: "failed", Amount: 5000, Currency: "EUR"},
		"pay_refund":   {ID: "pay_refund", Type: "refund", Status: "completed", Amount: 5000, Currency: "EUR"},
		"pay_usd":      {ID: "pay_usd", Type: "sale", Status: "completed", Amount: 5000, Currency: "USD"},
		"pay_reversed": {ID: "pay_reversed", Type: "sale", Status: "completed", Amount: 5000, Currency: "EUR", Reversed: true},
		"pay_1000":     {ID: "pay_1000", Type: "sale", Status: "completed", Amount: 1000, Currency: "EUR"},
	}
	refuse := func(t *testing.T, req fiscal.NewInvoice, field string) {
		t.Helper()
		before := counts(t, e.db)
		_, err := e.inv.Create(ctx, req, e.caller(""))
		var ve *fiscal.ValidationError
		if !errors.As(err, &ve) || ve.Field != field {
			t.Fatalf("err=%v, want a validation error on %s", err, field)
		}
		if after := counts(t, e.db); after != before {
			t.Fatalf("a refused invoice wrote: %v → %v", before, after)
		}
	}
	t.Run("ErrNotFound", func(t *testing.T) { refuse(t, cardSale(100, "pay_doesnotexist"), "payments[0].payment_id") })
	t.Run("ErrMoreThanPayment", func(t *testing.T) { refuse(t, cardSale(2000, "pay_1234"), "payments[0].amount") })
	t.Run("ErrNotCompleted", func(t *testing.T) {
		refuse(t, cardSale(100, "pay_pending"), "payments[0].payment_id")
		refuse(t, cardSale(100, "pay_failed"), "payments[0].payment_id")
	})
	t.Run("ErrNotASale", func(t *testing.T) { refuse(t, cardSale(100, "pay_refund"), "payments[0].payment_id") })
	t.Run("ErrCurrency", func(t *testing.T) { refuse(t, cardSale(100, "pay_usd"), "payments[0].payment_id") })
	t.Run("ErrReversed", func(t *testing.T) { refuse(t, cardSale(100, "pay_reversed"), "payments[0].payment_id") })
	t.Run("ErrSecondPaymentField", func(t *testing.T) {
		req := cardSale(1500, "pay_1234")
		req.Payments = []fiscal.NewPayment{{Type: "cash", Amount: 500}, {Type: "card", Amount: 1000, PaymentID: "nope"}}
		refuse(t, req, "payments[1].payment_id")
	})
	t.Run("ClaimsSumOverInvoices", func(t *testing.T) {
		a, err := e.inv.Create(ctx, cardSale(600, "pay_1000"), e.caller("claim-a"))
		if err != nil {
			t.Fatal(err)
		}
		refuse(t, cardSale(500, "pay_1000"), "payments[0].amount") // 600 + 500 > 1000
		// Two payments of one invoice linking the same card payment count together.
		two := cardSale(500, "pay_1000")
		two.Items[0].UnitPrice = 500
		two.Payments = []fiscal.NewPayment{{Type: "card", Amount: 250, PaymentID: "pay_1000"}, {Type: "card", Amount: 250, PaymentID: "pay_1000"}}
		refuse(t, two, "payments[1].amount")
		if _, err := e.inv.Create(ctx, cardSale(400, "pay_1000"), e.caller("claim-b")); err != nil {
			t.Fatalf("600 + 400 of 1000: %v", err)
		}
		refuse(t, cardSale(1, "pay_1000"), "payments[0].amount")
		// A void gives its sale's claim back, so the payment can settle
		// a corrected invoice.
		if _, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "void", OriginalInvoiceID: a.ID}, e.caller("claim-v")); err != nil {
			t.Fatal(err)
		}
		if _, err := e.inv.Create(ctx, cardSale(600, "pay_1000"), e.caller("claim-c")); err != nil {
			t.Fatalf("after the void: %v", err)
		}
	})
	t.Run("OK", func(t *testing.T) {
		inv, err := e.inv.Create(ctx, cardSale(1234, "pay_1234"), e.caller("ok"))
		if err != nil {
			t.Fatal(err)
		}
		if inv.Payments[0].PaymentID != "pay_1234" {
			t.Fatalf("payments %+v", inv.Payments)
		}
	})
}

// TestCardPaymentNoReader: without a PaymentReader no payment_id can be
// checked, so none is accepted.
func TestCardPaymentNoReader(t *testing.T) {
	e := newEnv(t, "")
	e.pays = nil
	e.readPays = nil
	inv := fiscal.NewInvoices(e.db, fiscal.InvoicesOptions{Scheme: e.sch, Certificates: e.certs, TIN: "12345678",
		BusinessUnit: "bb123bb123", Device: "cc123cc123", Software: "ss123ss123", Now: e.clk.Now})
	_, err := inv.Create(context.Background(), cardSale(100, "pay_1"), e.caller(""))
	var ve *fiscal.ValidationError
	if !errors.As(err, &ve) || ve.Field != "payments[0].payment_id" {
		t.Fatalf("err=%v", err)
	}
	if _, err := inv.Create(context.Background(), cardSale(100, ""), e.caller("")); err != nil {
		t.Fatalf("a card payment without payment_id: %v", err)
	}
}

// TestCardPaymentClaimsConcurrent: invoices created at once never claim
// more of one payment than its amount together; the sum is taken in each
// invoice's own transaction.
func TestCardPaymentClaimsConcurrent(t *testing.T) {
	e := newEnv(t, "")
	e.pays = map[string]fiscal.LinkedPayment{"pay_1000": {ID: "pay_1000", Type: "sale", Status: "completed", Amount: 1000, Currency: "EUR"}}
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.inv.Create(context.Background(), cardSale(300, "pay_1000"), e.caller(fmt.Sprintf("c%d", i)))
			var ve *fiscal.ValidationError
			switch {
			case err == nil:
				mu.Lock()
				ok++
				mu.Unlock()
			case !errors.As(err, &ve) || ve.Field != "payments[0].amount":
				t.Errorf("invoice %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	var claimed int64
	if err := e.db.Read.QueryRow("SELECT SUM(amount) FROM invoice_card_payments WHERE payment_id = 'pay_1000'").Scan(&claimed); err != nil {
		t.Fatal(err)
	}
	if ok != 3 || claimed != 900 {
		t.Fatalf("%d invoices claimed %d of 1000, want 3 claiming 900", ok, claimed)
	}
}
