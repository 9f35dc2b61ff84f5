package fiscal_test

import (
	"context"
	"errors"
	"testing"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/simulator/printer"
)

// lostAnswer is a printer whose next report or cash operation (amount >
// 0) loses its answer: after the printer executed it (printed = true),
// or before it reached the printer. From posgate's side both look like a
// crash between sending and recording.
type lostAnswer struct {
	fiscal.OpPrinter
	printed bool
	armed   bool
}

var errLost = errors.New("line lost: " + device.ErrDisconnected.Error())

func (l *lostAnswer) lose(do func() error) error {
	if !l.armed {
		return do()
	}
	l.armed = false
	if l.printed {
		if err := do(); err != nil {
			return err
		}
	}
	return errLost
}

func (l *lostAnswer) ZReport(ctx context.Context) (r device.Report, err error) {
	err = l.lose(func() error { r, err = l.OpPrinter.ZReport(ctx); return err })
	return r, err
}

func (l *lostAnswer) Cash(ctx context.Context, k device.CashKind, amount int64) (cs device.CashState, err error) {
	if amount == 0 {
		return l.OpPrinter.Cash(ctx, k, amount)
	}
	err = l.lose(func() error { cs, err = l.OpPrinter.Cash(ctx, k, amount); return err })
	return cs, err
}

func zReports(sim *printer.Printer) int {
	n := 0
	for _, d := range sim.Journal() {
		if d.Kind == printer.KindZReport {
			n++
		}
	}
	return n
}

// TestZReportOnceAfterCrash (issue 11 part 12): a Z report that printed
// but whose answer was lost (a crash before its record) is not printed
// again by the retry after a restart: the retry asks the printer for its
// last Z number. One that never reached the printer is printed by the
// retry, once. A finished one is answered from the record.
func TestZReportOnceAfterCrash(t *testing.T) {
	for _, printed := range []bool{true, false} {
		name := map[bool]string{true: "PrintedThenLost", false: "LostBeforePrinter"}[printed]
		t.Run(name, func(t *testing.T) {
			sim, spec := simPrinter(t, printer.Options{})
			db := openStore(t)
			ctx := context.Background()
			drv := connectDriver(t, spec, db)
			op := fiscal.Op{Scope: "key_1", Key: "z-2026-06-01"}
			p := &lostAnswer{OpPrinter: drv, printed: printed, armed: true}
			if _, err := fiscal.NewPrinterOps(db).Report(ctx, p, "p1", fiscal.OpZReport, op); !errors.Is(err, errLost) {
				t.Fatalf("first attempt: %v", err)
			}
			if want := map[bool]int{true: 1, false: 0}[printed]; zReports(sim) != want {
				t.Fatalf("%d Z reports after the first attempt, want %d", zReports(sim), want)
			}
			// Restart: a new PrinterOps on the same store; the client retries.
			ops := fiscal.NewPrinterOps(db)
			res, err := ops.Report(ctx, drv, "p1", fiscal.OpZReport, op)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if n := zReports(sim); n != 1 {
				t.Fatalf("%d Z reports, want exactly 1", n)
			}
			if res.Report == nil || res.Report.Number != 1 || res.Recovered != printed {
				t.Fatalf("result %+v (report %+v), want number 1, recovered=%v", res, res.Report, printed)
			}
			before := sim.Executed()
			again, err := ops.Report(ctx, drv, "p1", fiscal.OpZReport, op)
			if err != nil || again.Report.Number != 1 || sim.Executed() != before {
				t.Fatalf("third call: %+v %v, %d frames sent", again, err, sim.Executed()-before)
			}
			if _, err := ops.Report(ctx, drv, "p1", fiscal.OpXReport, op); !errors.Is(err, fiscal.ErrOpMismatch) {
				t.Fatalf("same key, other operation: %v", err)
			}
		})
	}
}

// TestCashOnceAfterCrash: a cash-in whose answer was lost after the
// printer took it is found in the drawer's counters, not put in twice.
func TestCashOnceAfterCrash(t *testing.T) {
	sim, spec := simPrinter(t, printer.Options{})
	db := openStore(t)
	ctx := context.Background()
	drv := connectDriver(t, spec, db)
	op := fiscal.Op{Scope: "key_1", Key: "float"}
	p := &lostAnswer{OpPrinter: drv, printed: true, armed: true}
	if _, err := fiscal.NewPrinterOps(db).Cash(ctx, p, "p1", device.CashIn, 5000, op); !errors.Is(err, errLost) {
		t.Fatalf("first attempt: %v", err)
	}
	res, err := fiscal.NewPrinterOps(db).Cash(ctx, drv, "p1", device.CashIn, 5000, op)
	if err != nil || res.Cash == nil || !res.Recovered {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if c := sim.Counters(); c.CashIn != 5000 || c.CashSum != 5000 || res.Cash.In != 5000 {
		t.Fatalf("drawer %+v, result %+v: want 50.00 put in once", c, res.Cash)
	}
	if _, err := fiscal.NewPrinterOps(db).Cash(ctx, drv, "p1", device.CashIn, 6000, op); !errors.Is(err, fiscal.ErrOpMismatch) {
		t.Fatalf("same key, other amount: %v", err)
	}
}

// TestReportRefusedThenRetried: a Z report the printer refuses (paper
// out) printed nothing, so the retry prints it.
func TestReportRefusedThenRetried(t *testing.T) {
	sim, spec := simPrinter(t, printer.Options{})
	db := openStore(t)
	ctx := context.Background()
	drv := connectDriver(t, spec, db)
	ops := fiscal.NewPrinterOps(db)
	op := fiscal.Op{Scope: "key_1", Key: "z"}
	sim.SetPaperOut(true)
	if _, err := ops.Report(ctx, drv, "p1", fiscal.OpZReport, op); !errors.Is(err, device.ErrPaperOut) {
		t.Fatalf("paper out: %v", err)
	}
	sim.SetPaperOut(false)
	res, err := ops.Report(ctx, drv, "p1", fiscal.OpZReport, op)
	if err != nil || res.Recovered || zReports(sim) != 1 {
		t.Fatalf("retry: %+v %v, %d Z reports", res, err, zReports(sim))
	}
}
