//go:build linux || darwin

package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/store/storetest"
)

type payEnv struct {
	*env
	db  *store.DB
	sim *terminal.Simulator
	svc *payment.Service
}

type payOptions struct {
	sim     terminal.Options
	timeout time.Duration
	port    string // default: the simulator's pty
	wrap    func(simulator.Handler) simulator.Handler
	noWait  bool
	store   store.Options // the store's options (a slow disk's VFS)
}

// newPayEnv serves the API with payments on terminal t1, a ZVT simulator
// on a pty.
func newPayEnv(t testing.TB, o payOptions) *payEnv {
	t.Helper()
	if o.sim.Step == 0 {
		o.sim.Step = 30 * time.Millisecond
	}
	if o.sim.T2 == 0 {
		o.sim.T2 = 300 * time.Millisecond
	}
	sim := terminal.New(o.sim)
	h := simulator.Handler(sim.ServeSerial)
	if o.wrap != nil {
		h = o.wrap(h)
	}
	pty, err := simulator.ServePTY(context.Background(), h, simulator.PTYOptions{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pty.Close() })
	port := o.port
	if port == "" {
		port = pty.Path()
	}
	client := zvt.New(zvt.Options{ID: "t1", Spec: port, Log: zerolog.Nop(), BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	pe := &payEnv{sim: sim}
	pe.env = newEnvOn(t, storetest.OpenWith(t, o.store), func(d *api.Deps) {
		pe.db = d.Store
		pe.svc = payment.New(d.Store, payment.Options{
			Terminals: []payment.Terminal{{ID: "t1", Device: client, Protocol: "zvt", Port: port, Online: func() bool {
				on, _ := client.Link().State()
				return on
			}}},
			Timeout:  o.timeout,
			RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
			Log: d.Log,
		})
		d.Payments = pe.svc
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); client.Run(ctx) }()
	go func() { defer wg.Done(); pe.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	if !o.noWait {
		pe.waitReady(t)
	}
	return pe
}

// waitReady waits until t1 takes new payments.
func (e *payEnv) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for st, _ := e.svc.Terminal("t1"); st.State != "online"; st, _ = e.svc.Terminal("t1") {
		if time.Now().After(deadline) {
			t.Fatalf("terminal not ready: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func saleBody(amount int64) string {
	return fmt.Sprintf(`{"type":"sale","terminal_id":"t1","amount":%d,"currency":"EUR","reference":"order-%d"}`, amount, amount)
}

func decodePayment(t *testing.T, r response) payment.Payment {
	t.Helper()
	var p payment.Payment
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("payment body %q: %v", r.body, err)
	}
	return p
}

// pay posts a payment and long-polls it to a final state.
func (e *payEnv) pay(t *testing.T, body, idem string) payment.Payment {
	t.Helper()
	r := e.do(t, "POST", "/v1/payments", &e.pos, body, "Idempotency-Key", idem)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	return e.await(t, decodePayment(t, r).ID)
}

func (e *payEnv) await(t *testing.T, id string) payment.Payment {
	t.Helper()
	r := e.do(t, "GET", "/v1/payments/"+id+"?wait=30s", &e.pos, "")
	if r.status != 200 {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	p := decodePayment(t, r)
	if !p.Status.Final() {
		t.Fatalf("payment %s still %s", id, p.Status)
	}
	return p
}

func (e *payEnv) eventTypes(t *testing.T) []string {
	t.Helper()
	rows, err := e.db.Read.Query(`SELECT type FROM outbox_events WHERE type LIKE 'payment.%' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

func TestPaymentsHTTP(t *testing.T) {
	e := newPayEnv(t, payOptions{})
	sale := e.pay(t, saleBody(1234), "sale-1")
	if sale.Status != payment.StatusCompleted || sale.ReceiptNumber == 0 || sale.Amount != 1234 {
		t.Fatalf("sale %+v", sale)
	}
	var data string
	if err := e.db.Read.QueryRow(`SELECT data FROM outbox_events WHERE type = 'payment.completed'`).Scan(&data); err != nil {
		t.Fatal(err)
	}
	var ev payment.Payment
	json.Unmarshal([]byte(data), &ev)
	if ev.ID != sale.ID || ev.ReceiptNumber != sale.ReceiptNumber {
		t.Fatalf("payment.completed data %s", data)
	}

	t.Run("Reversal", func(t *testing.T) {
		rv := e.pay(t, fmt.Sprintf(`{"type":"reversal","original_payment_id":%q}`, sale.ID), "rev-1")
		if rv.Status != payment.StatusCompleted || rv.Amount != 1234 || rv.TerminalID != "t1" {
			t.Fatalf("reversal %+v", rv)
		}
		orig := decodePayment(t, e.do(t, "GET", "/v1/payments/"+sale.ID, &e.pos, ""))
		if orig.Reversal == nil || orig.Reversal.By != rv.ID {
			t.Fatalf("original not marked reversed: %+v", orig.Reversal)
		}
		r := e.do(t, "POST", "/v1/payments", &e.pos, fmt.Sprintf(`{"type":"reversal","original_payment_id":%q}`, sale.ID), "Idempotency-Key", "rev-2")
		if code, _ := r.errorCode(t); r.status != 409 || code != api.CodePaymentReversed {
			t.Fatalf("second reversal: %d %s", r.status, r.body)
		}
		j := e.sim.Journal()
		if len(j) != 2 || !j[0].Reversed || j[1].Kind != terminal.Reversal {
			t.Fatalf("journal %+v", j)
		}
	})
	t.Run("Refund", func(t *testing.T) {
		rf := e.pay(t, `{"type":"refund","terminal_id":"t1","amount":500,"currency":"EUR"}`, "ref-1")
		if rf.Status != payment.StatusCompleted || rf.Type != payment.TypeRefund {
			t.Fatalf("refund %+v", rf)
		}
	})
	t.Run("EndOfDay", func(t *testing.T) {
		e.pay(t, saleBody(700), "sale-2")
		r := e.do(t, "POST", "/v1/terminals/t1/end-of-day", &e.pos, "", "Idempotency-Key", "eod-1")
		if r.status != 200 {
			t.Fatalf("end of day: %d %s", r.status, r.body)
		}
		var res payment.EndOfDayResult
		json.Unmarshal(r.body, &res)
		if res.Total != 200 || res.ResultCode != 0 { // 700 sold − 500 refunded; the reversed sale counts nothing
			t.Fatalf("end of day %s", r.body)
		}
		if r := e.do(t, "POST", "/v1/terminals/t9/end-of-day", &e.pos, "", "Idempotency-Key", "eod-2"); r.status != 404 {
			t.Fatalf("unknown terminal: %d", r.status)
		}
		// The end-of-day is on record, with its state and the turnover
		// it saw before (GET /v1/terminals/{id}/end-of-day).
		r = e.do(t, "GET", "/v1/terminals/t1/end-of-day", &e.pos, "")
		var list struct{ Data []payment.EndOfDayResult }
		if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 || len(list.Data) != 1 ||
			list.Data[0].ID != res.ID || list.Data[0].State != payment.EndOfDayCompleted || list.Data[0].TotalBefore == nil || *list.Data[0].TotalBefore != 200 {
			t.Fatalf("end-of-day list: %d %s", r.status, r.body)
		}
		if r := e.do(t, "GET", "/v1/terminals/t9/end-of-day", &e.pos, ""); r.status != 404 {
			t.Fatalf("unknown terminal's list: %d", r.status)
		}
	})
	t.Run("List", func(t *testing.T) {
		r := e.do(t, "GET", "/v1/payments?limit=2", &e.pos, "")
		var page struct {
			Data       []payment.Payment `json:"data"`
			NextCursor string            `json:"next_cursor"`
		}
		json.Unmarshal(r.body, &page)
		if r.status != 200 || len(page.Data) != 2 || page.Data[0].ID != sale.ID || page.NextCursor == "" {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		r = e.do(t, "GET", "/v1/payments?limit=200&cursor="+page.NextCursor, &e.pos, "")
		json.Unmarshal(r.body, &page)
		if len(page.Data) != 2 || page.NextCursor != "" {
			t.Fatalf("second page: %s", r.body)
		}
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		r = e.do(t, "GET", "/v1/payments?since="+future, &e.pos, "")
		json.Unmarshal(r.body, &page)
		if len(page.Data) != 0 {
			t.Fatalf("since the future: %s", r.body)
		}
		if r := e.do(t, "GET", "/v1/payments?cursor=zz", &e.pos, ""); r.status != 400 {
			t.Fatalf("bad cursor: %d", r.status)
		}
	})
	t.Run("Devices", func(t *testing.T) {
		r := e.do(t, "GET", "/v1/devices/t1", &e.pos, "")
		var d map[string]any
		json.Unmarshal(r.body, &d)
		if r.status != 200 || d["state"] != "online" || d["kind"] != "terminal" || d["firmware"] == nil {
			t.Fatalf("device: %d %s", r.status, r.body)
		}
		if r := e.do(t, "GET", "/v1/devices", &e.pos, ""); r.status != 200 {
			t.Fatalf("devices: %d %s", r.status, r.body)
		}
		if r := e.do(t, "GET", "/v1/devices/nope", &e.pos, ""); r.status != 404 {
			t.Fatalf("unknown device: %d", r.status)
		}
	})
	t.Run("ErrBadInput", func(t *testing.T) {
		for _, tc := range []struct {
			name, body, idem string
			status           int
			code, field      string
		}{
			{"ZeroAmount", saleBody(0), "b1", 400, api.CodeValidation, "amount"},
			{"Fraction", `{"type":"sale","terminal_id":"t1","amount":12.5}`, "b2", 400, api.CodeInvalidJSON, "amount"},
			{"UnknownField", `{"type":"sale","terminal_id":"t1","amount":1,"tip":1}`, "b3", 400, api.CodeInvalidJSON, "tip"},
			{"UnknownTerminal", `{"type":"sale","terminal_id":"t9","amount":1}`, "b4", 400, api.CodeValidation, "terminal_id"},
			{"Currency", `{"type":"sale","terminal_id":"t1","amount":1,"currency":"USD"}`, "b5", 400, api.CodeValidation, "currency"},
			{"Type", `{"type":"gift","terminal_id":"t1","amount":1}`, "b6", 400, api.CodeValidation, "type"},
			{"ReversalWithout", `{"type":"reversal"}`, "b7", 400, api.CodeValidation, "original_payment_id"},
			{"NoIdempotencyKey", saleBody(1), "", 400, api.CodeIdempotencyMissing, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				hdr := []string{}
				if tc.idem != "" {
					hdr = []string{"Idempotency-Key", tc.idem}
				}
				r := e.do(t, "POST", "/v1/payments", &e.pos, tc.body, hdr...)
				code, msg := r.errorCode(t)
				if r.status != tc.status || code != tc.code {
					t.Fatalf("%d %s: %s", r.status, code, msg)
				}
			})
		}
		if r := e.do(t, "GET", "/v1/payments/pay_nope", &e.pos, ""); r.status != 404 {
			t.Fatalf("unknown payment: %d", r.status)
		}
		if r := e.do(t, "GET", "/v1/payments/"+sale.ID+"?wait=soon", &e.pos, ""); r.status != 400 {
			t.Fatalf("bad wait: %d", r.status)
		}
		if r := e.do(t, "POST", "/v1/payments/"+sale.ID+"/cancel", &e.pos, ""); r.status != 409 {
			t.Fatalf("cancel a completed payment: %d %s", r.status, r.body)
		}
	})
}

func TestPaymentOutcomesHTTP(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	e := newPayEnv(t, payOptions{timeout: timeout, sim: terminal.Options{Step: 200 * time.Millisecond}})
	t.Run("Decline51", func(t *testing.T) {
		if p := e.pay(t, saleBody(151), "51"); p.Status != payment.StatusFailed {
			t.Fatalf("status %s", p.Status)
		}
	})
	t.Run("CustomerCancels53", func(t *testing.T) {
		if p := e.pay(t, saleBody(153), "53"); p.Status != payment.StatusCancelled {
			t.Fatalf("status %s", p.Status)
		}
	})
	t.Run("CancelDuringPIN", func(t *testing.T) {
		r := e.do(t, "POST", "/v1/payments", &e.pos, saleBody(1000), "Idempotency-Key", "pin")
		id := decodePayment(t, r).ID
		for deadline := time.Now().Add(5 * time.Second); ; {
			p := decodePayment(t, e.do(t, "GET", "/v1/payments/"+id+"?wait=50ms", &e.pos, ""))
			if p.TerminalMessage == zvt.IntermediateText(0x01) {
				break
			}
			if time.Now().After(deadline) || p.Status.Final() {
				t.Fatalf("never saw PIN entry: %+v", p)
			}
		}
		r = e.do(t, "POST", "/v1/payments/"+id+"/cancel", &e.pos, "")
		if r.status != 202 && r.status != 200 {
			t.Fatalf("cancel: %d %s", r.status, r.body)
		}
		if p := e.await(t, id); p.Status != payment.StatusCancelled {
			t.Fatalf("status %s", p.Status)
		}
	})
	t.Run("Timeout52", func(t *testing.T) {
		start := time.Now()
		p := e.pay(t, saleBody(252), "52")
		if took := time.Since(start); p.Status != payment.StatusTimeout || took < timeout-500*time.Millisecond || took > timeout+500*time.Millisecond {
			t.Fatalf("status %s after %s, want timeout after %s ± 0.5 s", p.Status, took, timeout)
		}
	})
	t.Run("Reversed54", func(t *testing.T) {
		e.waitReady(t) // the timed-out session ends when the terminal says so
		p := e.pay(t, saleBody(354), "54")
		if p.Status != payment.StatusTimeout {
			t.Fatalf("status %s", p.Status)
		}
		for deadline := time.Now().Add(10 * time.Second); p.Resolution == ""; {
			if time.Now().After(deadline) {
				t.Fatalf("not resolved: %+v", p)
			}
			time.Sleep(20 * time.Millisecond)
			p = decodePayment(t, e.do(t, "GET", "/v1/payments/"+p.ID, &e.pos, ""))
		}
		if p.Resolution != payment.ResolutionReversed {
			t.Fatalf("resolution %s", p.Resolution)
		}
		j := e.sim.Journal()
		last := j[len(j)-1]
		if last.Kind != terminal.Reversal || last.OrigReceipt != p.ReceiptNumber {
			t.Fatalf("journal %+v", j)
		}
	})
	want := []string{payment.EventFailed, payment.EventCancelled, payment.EventCancelled, payment.EventTimeout, payment.EventTimeout, payment.EventReversed}
	if got := e.eventTypes(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events=%v, want %v", got, want)
	}
}

// TestPaymentIdempotentConcurrent sends one request twice at once: one
// charge, one payment, both answers name it.
func TestPaymentIdempotentConcurrent(t *testing.T) {
	e := newPayEnv(t, payOptions{})
	var (
		wg  sync.WaitGroup
		res [2]response
	)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = e.do(t, "POST", "/v1/payments", &e.pos, saleBody(4200), "Idempotency-Key", "twice")
		}()
	}
	wg.Wait()
	if res[0].status != 201 || res[1].status != 201 {
		t.Fatalf("statuses %d %d: %s %s", res[0].status, res[1].status, res[0].body, res[1].body)
	}
	a, b := decodePayment(t, res[0]), decodePayment(t, res[1])
	if a.ID != b.ID {
		t.Fatalf("two payments: %s %s", a.ID, b.ID)
	}
	if p := e.await(t, a.ID); p.Status != payment.StatusCompleted {
		t.Fatalf("status %s", p.Status)
	}
	// And once more, later: still the same payment, still one charge.
	r := e.do(t, "POST", "/v1/payments", &e.pos, saleBody(4200), "Idempotency-Key", "twice")
	if decodePayment(t, r).ID != a.ID || r.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", "/v1/payments", &e.pos, saleBody(4201), "Idempotency-Key", "twice"); r.status != 422 {
		t.Fatalf("same key, other body: %d", r.status)
	}
	if j := e.sim.Journal(); len(j) != 1 {
		t.Fatalf("journal has %d entries, want one charge: %+v", len(j), j)
	}
	var n int
	e.db.Read.QueryRow(`SELECT count(*) FROM payments`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d payments", n)
	}
}

func TestPaymentBusyAndOfflineHTTP(t *testing.T) {
	e := newPayEnv(t, payOptions{sim: terminal.Options{Slow: time.Second}})
	r := e.do(t, "POST", "/v1/payments", &e.pos, saleBody(1055), "Idempotency-Key", "slow")
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r2 := e.do(t, "POST", "/v1/payments", &e.pos, saleBody(100), "Idempotency-Key", "other")
	if code, _ := r2.errorCode(t); r2.status != 409 || code != api.CodeTerminalBusy {
		t.Fatalf("busy: %d %s", r2.status, r2.body)
	}
	e.await(t, decodePayment(t, r).ID)

	off := newPayEnv(t, payOptions{port: t.TempDir() + "/unplugged", noWait: true})
	r = off.do(t, "POST", "/v1/payments", &off.pos, saleBody(100), "Idempotency-Key", "off")
	if code, _ := r.errorCode(t); r.status != 503 || code != api.CodeTerminalOffline {
		t.Fatalf("offline: %d %s", r.status, r.body)
	}
	var n int
	off.db.Read.QueryRow(`SELECT count(*) FROM payments`).Scan(&n)
	if n != 0 {
		t.Fatalf("an offline terminal recorded %d payments", n)
	}
	d := off.do(t, "GET", "/v1/devices/t1", &off.pos, "")
	var dv map[string]any
	json.Unmarshal(d.body, &dv)
	if dv["state"] != "offline" {
		t.Fatalf("device %s", d.body)
	}
}

var _ device.Terminal = (*zvt.Client)(nil)

// TestReversalAfterRefundHTTP (issue 11 part 2): sale 2000, refund 500,
// then a reversal would credit 2500: it is 409 PAYMENT_HAS_REFUNDS.
func TestReversalAfterRefundHTTP(t *testing.T) {
	e := newPayEnv(t, payOptions{})
	s2 := e.pay(t, saleBody(2000), "sale-oc")
	rf := e.pay(t, fmt.Sprintf(`{"type":"refund","amount":500,"original_payment_id":%q}`, s2.ID), "ref-oc")
	if rf.Status != payment.StatusCompleted {
		t.Fatalf("refund %+v", rf)
	}
	r := e.do(t, "POST", "/v1/payments", &e.pos, fmt.Sprintf(`{"type":"reversal","original_payment_id":%q}`, s2.ID), "Idempotency-Key", "rev-oc")
	if code, _ := r.errorCode(t); r.status != 409 || code != api.CodePaymentHasRefunds || !strings.Contains(string(r.body), `"field":"original_payment_id"`) {
		t.Fatalf("reversal of a refunded sale: %d %s", r.status, r.body)
	}
	if j := e.sim.Journal(); len(j) != 2 {
		t.Fatalf("terminal journal %+v, want the sale and the refund only", j)
	}
}
