package api_test

import (
	"context"
	"encoding/json"
	"net"
	"testing"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/simulator/printer"
)

// newPrinterEnv serves a simulated Datecs printer on loopback TCP and
// gives the API a real driver connected to it as printer "p1".
func newPrinterEnv(t *testing.T) (*env, *printer.Printer) {
	t.Helper()
	return newPrinterEnvWith(t, nil)
}

// newPrinterEnvWith is newPrinterEnv with with applied to the API's
// dependencies after the printer is set.
func newPrinterEnvWith(t *testing.T, with func(d *api.Deps)) (*env, *printer.Printer) {
	t.Helper()
	sim := printer.New(printer.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = sim.ServeListener(ctx, ln) }()
	drv, err := datecs.Open(ctx, "tcp://"+ln.Addr().String(), datecs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		drv.Close()
		cancel()
		ln.Close()
		<-done
	})
	e := newEnvWith(t, func(d *api.Deps) {
		d.Printers = map[string]device.Printer{"p1": drv}
		if with != nil {
			with(d)
		}
	})
	return e, sim
}

func TestPrinterReports(t *testing.T) {
	e, sim := newPrinterEnv(t)

	t.Run("X", func(t *testing.T) {
		r := e.do(t, "POST", "/v1/printers/p1/reports/x", &e.pos, "", "Idempotency-Key", "x-1")
		if r.status != 201 {
			t.Fatalf("status %d %s", r.status, r.body)
		}
		if sim.Counters().Z != 0 {
			t.Fatal("an X report closed the day")
		}
	})
	t.Run("ZOnceForOneKey", func(t *testing.T) {
		first := e.do(t, "POST", "/v1/printers/p1/reports/z", &e.pos, "", "Idempotency-Key", "z-day-1")
		again := e.do(t, "POST", "/v1/printers/p1/reports/z", &e.pos, "", "Idempotency-Key", "z-day-1")
		if first.status != 201 || again.status != 201 || string(first.body) != string(again.body) {
			t.Fatalf("first %d %s, retry %d %s", first.status, first.body, again.status, again.body)
		}
		if got := sim.Counters().Z; got != 1 {
			t.Fatalf("printer made %d Z reports for one Idempotency-Key, want 1", got)
		}
		var rep struct{ Number int }
		json.Unmarshal(first.body, &rep)
		if rep.Number != 1 {
			t.Fatalf("Z number %d, want 1", rep.Number)
		}
	})
	t.Run("Cash", func(t *testing.T) {
		r := e.do(t, "POST", "/v1/printers/p1/cash", &e.pos, `{"type":"in","amount":5000}`, "Idempotency-Key", "cash-1")
		if r.status != 201 || sim.Counters().CashIn != 5000 {
			t.Fatalf("status %d %s; drawer in %d", r.status, r.body, sim.Counters().CashIn)
		}
	})
	t.Run("ErrBadInput", func(t *testing.T) {
		for _, tc := range []struct{ path, body, field string }{
			{"/v1/printers/p1/reports/y", "", "kind"},
			{"/v1/printers/p1/cash", `{"type":"sideways","amount":1}`, "type"},
			{"/v1/printers/p1/cash", `{"type":"out","amount":-1}`, "amount"},
		} {
			r := e.do(t, "POST", tc.path, &e.pos, tc.body, "Idempotency-Key", "bad-"+tc.field)
			if code, msg := r.errorCode(t); r.status != 400 || code != "VALIDATION_ERROR" {
				t.Fatalf("%s %s: status %d %s %s", tc.path, tc.body, r.status, code, msg)
			}
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		r := e.do(t, "POST", "/v1/printers/p9/reports/x", &e.pos, "", "Idempotency-Key", "nf")
		if r.status != 404 {
			t.Fatalf("status %d", r.status)
		}
	})
	t.Run("ErrPaperOut", func(t *testing.T) {
		sim.SetPaperOut(true)
		defer sim.SetPaperOut(false)
		r := e.do(t, "POST", "/v1/printers/p1/reports/x", &e.pos, "", "Idempotency-Key", "x-paper")
		if code, _ := r.errorCode(t); r.status != 409 || code != "PRINTER_REJECTED" {
			t.Fatalf("status %d code %s: %s", r.status, code, r.body)
		}
	})
}

// loseZAnswer is a printer whose first Z report prints but whose answer
// is lost, as when posgate dies between printing and recording it.
type loseZAnswer struct {
	device.Printer
	lost bool
}

func (l *loseZAnswer) ZReport(ctx context.Context) (device.Report, error) {
	r, err := l.Printer.ZReport(ctx)
	if err == nil && !l.lost {
		l.lost = true
		return device.Report{}, device.ErrDisconnected
	}
	return r, err
}

// TestZReportRetryAfterLostAnswer (issue 11 part 12): the operation is
// recorded before the Z report is sent, so the retry with the same
// Idempotency-Key asks the printer for its last Z number and prints no
// second Z report.
func TestZReportRetryAfterLostAnswer(t *testing.T) {
	e, sim := newPrinterEnvWith(t, func(d *api.Deps) {
		d.PrinterOps = fiscal.NewPrinterOps(d.Store)
		d.Printers["p1"] = &loseZAnswer{Printer: d.Printers["p1"]}
	})
	first := e.do(t, "POST", "/v1/printers/p1/reports/z", &e.pos, "", "Idempotency-Key", "z-lost")
	if first.status != 503 || sim.Counters().Z != 1 {
		t.Fatalf("first: %d %s; %d Z reports", first.status, first.body, sim.Counters().Z)
	}
	again := e.do(t, "POST", "/v1/printers/p1/reports/z", &e.pos, "", "Idempotency-Key", "z-lost")
	var rep struct {
		Number    int
		Recovered bool
	}
	json.Unmarshal(again.body, &rep)
	if again.status != 201 || rep.Number != 1 || !rep.Recovered {
		t.Fatalf("retry: %d %s", again.status, again.body)
	}
	if got := sim.Counters().Z; got != 1 {
		t.Fatalf("%d Z reports for one request, want 1", got)
	}
}
