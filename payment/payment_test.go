//go:build linux || darwin

package payment_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/simulator/terminal"
)

func TestSale(t *testing.T) { eachProtocol(t, testSale) }

func testSale(t *testing.T, proto string) {
	r := newRig(t, rigOptions{protocol: proto})
	ctx := context.Background()
	p, err := r.svc.Create(ctx, sale(1234), caller("k1"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != payment.StatusInProgress || p.ID == "" {
		t.Fatalf("created %+v", p)
	}
	p = final(t, r.svc, p.ID, 10*time.Second)
	if got, want := p.Status, payment.StatusCompleted; got != want {
		t.Fatalf("Status=%v, want %v (%s)", got, want, p.ResultText)
	}
	if payRef(p) == "" || (proto == "zvt" && p.TraceNumber == 0) || p.ResultCode == nil || *p.ResultCode != 0 {
		t.Fatalf("terminal data missing: %+v", p)
	}
	if p.MaskedPAN == "" || strings.Count(p.MaskedPAN, "*") < 4 || p.CardBrand == "" {
		t.Fatalf("card: pan %q brand %q", p.MaskedPAN, p.CardBrand)
	}
	if len(p.Receipts) == 0 || len(p.Receipts[0].Lines) == 0 {
		t.Fatalf("no receipt lines: %+v", p.Receipts)
	}
	es := events(t, r.db)
	if got, want := eventTypes(es), []string{payment.EventCompleted}; !slices.Equal(got, want) {
		t.Fatalf("events=%v, want %v", got, want)
	}
	if got, want := payRef(es[0].Data), payRef(p); got != want {
		t.Fatalf("event reference=%s, want %s", got, want)
	}
	j := r.sim.Journal()
	if len(j) != 1 || !j[0].Approved || j[0].Amount != 1234 || j[0].Ref != payRef(p) {
		t.Fatalf("journal %+v", j)
	}
	// The terminal is free again.
	p2, err := r.svc.Create(ctx, sale(100), caller("k2"))
	if err != nil {
		t.Fatal(err)
	}
	if p2 = final(t, r.svc, p2.ID, 10*time.Second); p2.Status != payment.StatusCompleted {
		t.Fatalf("second sale %s", p2.Status)
	}
}

func TestOutcomes(t *testing.T) { eachProtocol(t, testOutcomes) }

func testOutcomes(t *testing.T, proto string) {
	r := newRig(t, rigOptions{protocol: proto})
	for _, tc := range []struct {
		name   string
		amount int64
		status payment.Status
		event  string
	}{
		{"Decline51", 1051, payment.StatusFailed, payment.EventFailed},
		{"CustomerCancels53", 2053, payment.StatusCancelled, payment.EventCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(events(t, r.db))
			p, err := r.svc.Create(context.Background(), sale(tc.amount), caller(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			p = final(t, r.svc, p.ID, 10*time.Second)
			if p.Status != tc.status {
				t.Fatalf("Status=%v, want %v (%s)", p.Status, tc.status, p.ResultText)
			}
			if p.ResultCode == nil || *p.ResultCode == 0 || p.ResultText == "" {
				t.Fatalf("result %v %q", p.ResultCode, p.ResultText)
			}
			es := events(t, r.db)[before:]
			if len(es) != 1 || es[0].Type != tc.event || es[0].Data.ID != p.ID {
				t.Fatalf("events %v", eventTypes(es))
			}
		})
	}
	for _, e := range r.sim.Journal() {
		if e.Approved {
			t.Fatalf("charged: %+v", e)
		}
	}
}

func TestCancelDuringPIN(t *testing.T) {
	r := newRig(t, rigOptions{sim: terminal.Options{Step: 400 * time.Millisecond}})
	ctx := context.Background()
	p, err := r.svc.Create(ctx, sale(1500), caller("pin"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := r.svc.Wait(ctx, p.ID, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(got.TerminalMessage), "pin") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw PIN entry; last %q status %s", got.TerminalMessage, got.Status)
		}
	}
	if _, err := r.svc.Cancel(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	p = final(t, r.svc, p.ID, 5*time.Second)
	if p.Status != payment.StatusCancelled {
		t.Fatalf("Status=%v (%s)", p.Status, p.ResultText)
	}
	if got := eventTypes(events(t, r.db)); !slices.Equal(got, []string{payment.EventCancelled}) {
		t.Fatalf("events %v", got)
	}
	if len(r.sim.Journal()) != 0 {
		t.Fatalf("journal %+v", r.sim.Journal())
	}
}

func TestTimeout(t *testing.T) { eachProtocol(t, testTimeout) }

func testTimeout(t *testing.T, proto string) {
	const timeout = 1500 * time.Millisecond
	t.Run("NoResult52", func(t *testing.T) {
		r := newRig(t, rigOptions{protocol: proto, timeout: timeout})
		start := time.Now()
		p, err := r.svc.Create(context.Background(), sale(5252), caller("52"))
		if err != nil {
			t.Fatal(err)
		}
		p = final(t, r.svc, p.ID, 5*time.Second)
		took := time.Since(start)
		if p.Status != payment.StatusTimeout {
			t.Fatalf("Status=%v", p.Status)
		}
		if took < timeout-500*time.Millisecond || took > timeout+500*time.Millisecond {
			t.Fatalf("timed out after %s, want %s ± 0.5 s", took, timeout)
		}
		if d := p.EndedAt.Sub(*p.StartedAt); d < timeout || d > timeout+500*time.Millisecond {
			t.Fatalf("ended_at - started_at = %s", d)
		}
		p = resolved(t, r.svc, p.ID, 5*time.Second)
		if p.Resolution != payment.ResolutionNotCharged {
			t.Fatalf("Resolution=%v", p.Resolution)
		}
		if got := eventTypes(events(t, r.db)); !slices.Equal(got, []string{payment.EventTimeout}) {
			t.Fatalf("events %v", got)
		}
		if j := r.sim.Journal(); len(j) != 0 {
			t.Fatalf("journal %+v", j)
		}
		// Once the terminal ended the session it takes new work.
		waitReady(t, r.svc)
	})
	t.Run("ApprovedAfterAbort54", func(t *testing.T) {
		r := newRig(t, rigOptions{protocol: proto, timeout: timeout})
		p, err := r.svc.Create(context.Background(), sale(5454), caller("54"))
		if err != nil {
			t.Fatal(err)
		}
		p = final(t, r.svc, p.ID, 5*time.Second)
		if p.Status != payment.StatusTimeout {
			t.Fatalf("Status=%v", p.Status)
		}
		p = resolved(t, r.svc, p.ID, 10*time.Second)
		if p.Resolution != payment.ResolutionReversed || p.Reversal == nil || p.Reversal.By != "auto" {
			t.Fatalf("Resolution=%v Reversal=%+v (%s)", p.Resolution, p.Reversal, p.ResultText)
		}
		es := events(t, r.db)
		if got, want := eventTypes(es), []string{payment.EventTimeout, payment.EventReversed}; !slices.Equal(got, want) {
			t.Fatalf("events=%v, want %v", got, want)
		}
		if es[1].Data.Resolution != payment.ResolutionReversed || payRef(es[1].Data) != payRef(p) {
			t.Fatalf("payment.reversed data %+v", es[1].Data)
		}
		j := r.sim.Journal()
		if len(j) != 2 || j[0].Kind != "sale" || !j[0].Reversed || j[1].Kind != "reversal" || j[1].OrigRef != payRef(p) {
			t.Fatalf("journal %+v", j)
		}
	})
}

// TestAbortIgnored: a terminal that acknowledges Abort and carries on
// (some acquirers do) approves after the timeout; the sale is reversed.
func TestAbortIgnored(t *testing.T) { eachProtocol(t, testAbortIgnored) }

func testAbortIgnored(t *testing.T, proto string) {
	r := newRig(t, rigOptions{protocol: proto, timeout: 700 * time.Millisecond, sim: terminal.Options{Slow: 1500 * time.Millisecond}})
	r.sim.IgnoreAbort(true)
	p, err := r.svc.Create(context.Background(), sale(1255), caller("slow"))
	if err != nil {
		t.Fatal(err)
	}
	if p = final(t, r.svc, p.ID, 5*time.Second); p.Status != payment.StatusTimeout {
		t.Fatalf("Status=%v", p.Status)
	}
	p = resolved(t, r.svc, p.ID, 10*time.Second)
	if p.Resolution != payment.ResolutionReversed {
		t.Fatalf("Resolution=%v (%s)", p.Resolution, p.ResultText)
	}
	j := r.sim.Journal()
	if len(j) != 2 || !j[0].Reversed || j[1].Kind != "reversal" {
		t.Fatalf("journal %+v", j)
	}
}

func TestBusyAndOffline(t *testing.T) { eachProtocol(t, testBusyAndOffline) }

func testBusyAndOffline(t *testing.T, proto string) {
	r := newRig(t, rigOptions{protocol: proto, sim: terminal.Options{Slow: 1500 * time.Millisecond}})
	ctx := context.Background()
	p, err := r.svc.Create(ctx, sale(1055), caller("slow"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Create(ctx, sale(100), caller("other")); !errors.Is(err, payment.ErrTerminalBusy) {
		t.Fatalf("second payment: %v, want ErrTerminalBusy", err)
	}
	// A retry of the running one is not busy: it is the same payment.
	again, err := r.svc.Create(ctx, sale(1055), caller("slow"))
	if err != nil || again.ID != p.ID {
		t.Fatalf("retry: %v %s", err, again.ID)
	}
	if _, err := r.svc.Create(ctx, sale(999), caller("slow")); !errors.Is(err, payment.ErrIdempotencyReused) {
		t.Fatalf("reused key: %v", err)
	}
	if p = final(t, r.svc, p.ID, 10*time.Second); p.Status != payment.StatusCompleted {
		t.Fatalf("slow sale %s", p.Status)
	}
	waitReady(t, r.svc)

	t.Run("ErrOffline", func(t *testing.T) {
		db := r.db
		var n int
		db.Read.QueryRow(`SELECT count(*) FROM payments`).Scan(&n)
		path := t.TempDir() + "/nothing"
		if proto == "nexo" {
			// A port nothing listens on, with some root to trust.
			s := serveNexo(t, terminal.Options{})
			path = "127.0.0.1:1|" + s.root
		}
		off := newRig(t, rigOptions{protocol: proto, db: db, path: path, noWait: true})
		_, err := off.svc.Create(ctx, sale(100), caller("off"))
		if !errors.Is(err, payment.ErrTerminalOffline) {
			t.Fatalf("err=%v, want ErrTerminalOffline", err)
		}
		var m int
		db.Read.QueryRow(`SELECT count(*) FROM payments`).Scan(&m)
		if m != n {
			t.Fatalf("payments %d → %d: an offline terminal recorded one", n, m)
		}
	})
}

// TestReplayAfterLostRecord: the idempotency middleware's record may be
// lost in a crash; a retry then reaches the service, which answers with
// the payment recorded under the key, even once the terminal is busy or
// the original sale has been reversed by that very request.
func TestReplayAfterLostRecord(t *testing.T) { eachProtocol(t, testReplayAfterLostRecord) }

func testReplayAfterLostRecord(t *testing.T, proto string) {
	r := newRig(t, rigOptions{protocol: proto})
	ctx := context.Background()
	s, err := r.svc.Create(ctx, sale(300), caller("s"))
	if err != nil {
		t.Fatal(err)
	}
	final(t, r.svc, s.ID, 10*time.Second)
	waitReady(t, r.svc)
	rev := payment.NewPayment{Type: payment.TypeReversal, OriginalPaymentID: s.ID}
	p, err := r.svc.Create(ctx, rev, caller("rv"))
	if err != nil {
		t.Fatal(err)
	}
	if p = final(t, r.svc, p.ID, 10*time.Second); p.Status != payment.StatusCompleted {
		t.Fatalf("reversal %s", p.Status)
	}
	again, err := r.svc.Create(ctx, rev, caller("rv"))
	if err != nil || again.ID != p.ID {
		t.Fatalf("retried reversal: %v %s, want %s", err, again.ID, p.ID)
	}
	if _, err := r.svc.Create(ctx, rev, caller("rv2")); !errors.Is(err, payment.ErrAlreadyReversed) {
		t.Fatalf("a second reversal: %v", err)
	}
	if j := r.sim.Journal(); len(j) != 2 {
		t.Fatalf("journal %+v", j)
	}
}

// TestWait: a long poll returns as soon as the payment is final, and
// after its wait when it is not.
func TestWait(t *testing.T) {
	r := newRig(t, rigOptions{sim: terminal.Options{Slow: time.Second}})
	ctx := context.Background()
	p, err := r.svc.Create(ctx, sale(2055), caller("w"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := r.svc.Wait(ctx, p.ID, 200*time.Millisecond)
	if err != nil || got.Status.Final() {
		t.Fatalf("short wait: %v %s", err, got.Status)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 700*time.Millisecond {
		t.Fatalf("short wait took %s", d)
	}
	got, err = r.svc.Wait(ctx, p.ID, 30*time.Second)
	if err != nil || got.Status != payment.StatusCompleted {
		t.Fatalf("long wait: %v %s", err, got.Status)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("long wait returned after %s, not at completion", d)
	}
	start = time.Now()
	if _, err := r.svc.Wait(ctx, p.ID, 30*time.Second); err != nil || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("wait on a final payment: %v after %s", err, time.Since(start))
	}
	if _, err := r.svc.Wait(ctx, "pay_nope", time.Second); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("unknown payment: %v", err)
	}
}

// Refunds of one sale never add up to more than the sale.
func TestRefundsCappedBySale(t *testing.T) { eachProtocol(t, testRefundsCappedBySale) }

func testRefundsCappedBySale(t *testing.T, proto string) {
	r := newRig(t, rigOptions{protocol: proto})
	ctx := context.Background()
	s, err := r.svc.Create(ctx, sale(1000), caller("cap-sale"))
	if err != nil {
		t.Fatal(err)
	}
	if s = final(t, r.svc, s.ID, 10*time.Second); s.Status != payment.StatusCompleted {
		t.Fatalf("sale %s", s.Status)
	}
	refund := func(amount int64, key string) (payment.Payment, error) {
		return r.svc.Create(ctx, payment.NewPayment{Type: payment.TypeRefund, TerminalID: "t1", Amount: amount,
			Currency: "EUR", OriginalPaymentID: s.ID}, caller(key))
	}
	p, err := refund(600, "cap-r1")
	if err != nil {
		t.Fatal(err)
	}
	if p = final(t, r.svc, p.ID, 10*time.Second); p.Status != payment.StatusCompleted {
		t.Fatalf("first refund %s", p.Status)
	}
	var ve *payment.ValidationError
	if _, err := refund(500, "cap-r2"); !errors.As(err, &ve) || ve.Field != "amount" {
		t.Fatalf("600+500 of 1000: err=%v, want a validation error on amount", err)
	}
	p, err = refund(400, "cap-r3")
	if err != nil {
		t.Fatalf("600+400 of 1000: %v", err)
	}
	if p = final(t, r.svc, p.ID, 10*time.Second); p.Status != payment.StatusCompleted {
		t.Fatalf("second refund %s", p.Status)
	}
	if _, err := refund(1, "cap-r4"); !errors.As(err, &ve) {
		t.Fatalf("a cent more than the sale: err=%v", err)
	}
}
