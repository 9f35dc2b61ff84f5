//go:build linux || darwin

package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/posgate/posgate/payment"
)

// POST /v1/terminals/{id}/read-card: the simulator's card (track 2 sent
// in clear) comes back as its type and masked number only; an unknown
// terminal is a 404.
func TestReadCardHTTP(t *testing.T) {
	e := newPayEnv(t, payOptions{})
	e.waitReady(t)
	var res payment.CardRead
	r := e.do(t, "POST", "/v1/terminals/t1/read-card", &e.pos, "")
	if r.status != 200 {
		t.Fatalf("read card: %d %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "read" || res.CardType != "magnetic_stripe" || res.MaskedPAN != "6799***********0019" || res.TerminalID != "t1" {
		t.Fatalf("read card %s", r.body)
	}
	if strings.Contains(string(r.body), "99998900000000019") || strings.Contains(string(r.body), "2512") {
		t.Fatalf("the answer holds card data: %s", r.body)
	}
	if r := e.do(t, "POST", "/v1/terminals/t9/read-card", &e.pos, ""); r.status != 404 {
		t.Fatalf("unknown terminal: %d %s", r.status, r.body)
	}
}

// An end-of-day the store cannot record is 503 STORE_UNAVAILABLE, and
// nothing reached the terminal: its batch is still unsettled.
func TestEndOfDayStoreUnavailableHTTP(t *testing.T) {
	e := newPayEnv(t, payOptions{})
	e.pay(t, saleBody(900), "sale-eod-ro")
	setReadOnly(t, e.env, true)
	r := e.do(t, "POST", "/v1/terminals/t1/end-of-day", &e.pos, "", "Idempotency-Key", "eod-ro")
	code, _ := r.errorCode(t)
	if r.status != 503 || code != "STORE_UNAVAILABLE" {
		t.Fatalf("end of day with the store read-only: %d %s", r.status, r.body)
	}
	setReadOnly(t, e.env, false)
	for _, j := range e.sim.Journal() {
		if j.Settled {
			t.Fatalf("the terminal settled an end-of-day posgate could not record: %+v", e.sim.Journal())
		}
	}
}
