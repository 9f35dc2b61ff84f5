//go:build linux || darwin

package payment_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/posgate/posgate/store"
)

// eodCounter counts the End-of-Day and Send Turnover Totals commands that
// reach the driver, and can stop (a crash) at one point of an End-of-Day:
// at the terminal's Status-Information, before posgate records or
// acknowledges it ("status"), or at its receipt, after the terminal
// settled ("print").
type eodCounter struct {
	device.DiagnosticTerminal
	eods, totals *atomic.Int32
	crashAt      device.TxEventKind // 0: never
	crashed      chan struct{}
}

func (c *eodCounter) EndOfDay(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	c.eods.Add(1)
	return c.DiagnosticTerminal.EndOfDay(ctx, func(ctx context.Context, e device.TxEvent) error {
		if c.crashAt != 0 && e.Kind == c.crashAt {
			close(c.crashed)
			<-ctx.Done() // the process is gone: nothing more is written or answered
			return ctx.Err()
		}
		return h(ctx, e)
	})
}

func (c *eodCounter) TurnoverTotals(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	c.totals.Add(1)
	return c.DiagnosticTerminal.TurnoverTotals(ctx, h)
}

// settled counts the simulator's settled journal entries.
func settled(sim *terminal.Simulator) (n int) {
	for _, e := range sim.Journal() {
		if e.Settled {
			n++
		}
	}
	return n
}

// An end-of-day is recorded before it reaches the terminal: with the store
// refusing the record, nothing is sent, neither End-of-Day nor Send
// Turnover Totals. Once it records, the end-of-day settles the batch and
// is listed with the turnover it saw before.
func TestEndOfDayRecordedBeforeSent(t *testing.T) {
	var eods, totals atomic.Int32
	r := newRig(t, rigOptions{wrap: func(d device.Terminal) device.Terminal {
		return &eodCounter{DiagnosticTerminal: d.(device.DiagnosticTerminal), eods: &eods, totals: &totals}
	}})
	ctx := context.Background()
	p, _ := r.svc.Create(ctx, sale(3000), caller("s1"))
	final(t, r.svc, p.ID, 10*time.Second)

	if _, err := r.db.Write.Exec(`CREATE TRIGGER no_ops BEFORE INSERT ON terminal_operations
		BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.EndOfDay(ctx, "t1"); err == nil {
		t.Fatal("end of day with a store that cannot record it: no error")
	}
	if eods.Load() != 0 || totals.Load() != 0 {
		t.Fatalf("%d End-of-Day and %d Turnover Totals reached the terminal without a record", eods.Load(), totals.Load())
	}
	sim := r.sim.(zvtSim).Simulator
	if n := settled(sim); n != 0 {
		t.Fatalf("%d journal entries settled", n)
	}
	if _, err := r.db.Write.Exec(`DROP TRIGGER no_ops`); err != nil {
		t.Fatal(err)
	}
	res, err := r.svc.EndOfDay(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if res.State != payment.EndOfDayCompleted || res.Total != 3000 || res.TotalBefore == nil || *res.TotalBefore != 3000 || res.ID == "" {
		t.Fatalf("end of day %+v, want completed 3000 with 3000 before", res)
	}
	if settled(sim) != 1 || eods.Load() != 1 {
		t.Fatalf("settled %d, %d End-of-Day sent; want 1, 1", settled(sim), eods.Load())
	}
	list, err := r.svc.EndOfDays(ctx, "t1", 0)
	if err != nil || len(list) != 1 || list[0].ID != res.ID || list[0].State != payment.EndOfDayCompleted {
		t.Fatalf("EndOfDays: %+v, %v", list, err)
	}
}

// A crash between End-of-Day and its answer never leads to a second
// settlement: at the next start the end-of-day is reconciled by asking the
// terminal for its turnover (Send Turnover Totals, PA00P015 §2.43), never
// by sending 06 50 again. Crashed before the Status-Information was
// acknowledged, the terminal did not close the batch (§2.2.8 as the
// simulator applies it to 06 50): failed, run it again. Crashed after, it
// did: completed, with the total seen before.
func TestEndOfDayCrashReconciles(t *testing.T) {
	for name, tc := range map[string]struct {
		at      device.TxEventKind
		state   payment.EndOfDayState
		settled int
	}{
		"BeforeTheAnswer":         {at: device.EventStatusInfo, state: payment.EndOfDayFailed, settled: 0},
		"AfterTheTerminalSettled": {at: device.EventPrint, state: payment.EndOfDayCompleted, settled: 2},
	} {
		t.Run(name, func(t *testing.T) {
			var eods, totals atomic.Int32
			c1 := &eodCounter{eods: &eods, totals: &totals, crashAt: tc.at, crashed: make(chan struct{})}
			r1 := newRig(t, rigOptions{wrap: func(d device.Terminal) device.Terminal {
				c1.DiagnosticTerminal = d.(device.DiagnosticTerminal)
				return c1
			}})
			sim := r1.sim.(zvtSim).Simulator
			ctx := context.Background()
			for i, amount := range []int64{1200, 800} {
				p, err := r1.svc.Create(ctx, sale(amount), caller(name+string(rune('a'+i))))
				if err != nil {
					t.Fatal(err)
				}
				final(t, r1.svc, p.ID, 10*time.Second)
			}
			go r1.svc.EndOfDay(ctx, "t1")
			select {
			case <-c1.crashed:
			case <-time.After(10 * time.Second):
				t.Fatal("end of day never reached the crash point")
			}
			r1.stop() // the crash

			c2 := &eodCounter{eods: &eods, totals: &totals}
			r2 := newRig(t, rigOptions{db: r1.db, path: r1.path, wrap: func(d device.Terminal) device.Terminal {
				c2.DiagnosticTerminal = d.(device.DiagnosticTerminal)
				return c2
			}})
			list, err := r2.svc.EndOfDays(ctx, "t1", 0)
			if err != nil || len(list) != 1 {
				t.Fatalf("EndOfDays after the restart: %+v, %v", list, err)
			}
			eod := list[0]
			if eod.State != tc.state || !eod.Reconciled || eod.Reason == "" {
				t.Fatalf("reconciled end of day %+v, want %s", eod, tc.state)
			}
			if tc.state == payment.EndOfDayCompleted && eod.Total != 2000 {
				t.Fatalf("reconciled total %d, want 2000", eod.Total)
			}
			if n := eods.Load(); n != 1 {
				t.Fatalf("End-of-Day sent %d times, want once", n)
			}
			if n := settled(sim); n != tc.settled {
				t.Fatalf("%d journal entries settled, want %d", n, tc.settled)
			}
			// The terminal takes work again.
			p, err := r2.svc.Create(ctx, sale(500), caller(name+"-after"))
			if err != nil {
				t.Fatal(err)
			}
			if got := final(t, r2.svc, p.ID, 10*time.Second); got.Status != payment.StatusCompleted {
				t.Fatalf("sale after the reconcile: %s", got.Status)
			}
		})
	}
}

// storeBusyAtEOD makes the store refuse writes (query_only: read-only,
// store.Unavailable) from the End-of-Day's Status-Information for lift.
type storeBusyAtEOD struct {
	device.DiagnosticTerminal
	setRO    func(on bool)
	lift     time.Duration
	statuses atomic.Int32
}

func (s *storeBusyAtEOD) EndOfDay(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	return s.DiagnosticTerminal.EndOfDay(ctx, func(ctx context.Context, e device.TxEvent) error {
		if e.Kind == device.EventStatusInfo && s.statuses.Add(1) == 1 {
			s.setRO(true)
			time.AfterFunc(s.lift, func() { s.setRO(false) })
		}
		return h(ctx, e)
	})
}

// The End-of-Day's totals meet a store that cannot write for a moment:
// posgate answers 84 9C, the terminal sends them again, and the batch is
// settled once with its totals on record.
func TestEndOfDayRetryLaterWhileStoreBusy(t *testing.T) {
	var setRO func(bool)
	sb := &storeBusyAtEOD{lift: 700 * time.Millisecond, setRO: func(on bool) { setRO(on) }}
	r := newRig(t, rigOptions{sim: terminal.Options{Repoll: 500 * time.Millisecond}, wrap: func(d device.Terminal) device.Terminal {
		sb.DiagnosticTerminal = d.(device.DiagnosticTerminal)
		return sb
	}})
	setRO = func(on bool) {
		v := map[bool]string{true: "1", false: "0"}[on]
		if _, err := r.db.Write.Exec("PRAGMA query_only = " + v); err != nil {
			t.Errorf("query_only: %v", err)
		}
	}
	ctx := context.Background()
	p, _ := r.svc.Create(ctx, sale(4200), caller("eod-busy"))
	final(t, r.svc, p.ID, 10*time.Second)
	res, err := r.svc.EndOfDay(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if res.State != payment.EndOfDayCompleted || res.Total != 4200 || sb.statuses.Load() < 2 {
		t.Fatalf("end of day %+v after %d Status-Informations; want completed 4200, sent again", res, sb.statuses.Load())
	}
	if n := settled(r.sim.(zvtSim).Simulator); n != 1 {
		t.Fatalf("%d entries settled, want 1", n)
	}
}

// eodCrashChildEnv tells the re-executed test binary to run the daemon
// side of TestEndOfDayKilled: "dbpath|pty".
const eodCrashChildEnv = "POSGATE_TEST_EOD_CRASH_CHILD"

// TestEndOfDayKilledChild sells, starts an end-of-day and hangs at its
// receipt, after the terminal settled; the parent kills it with SIGKILL.
func TestEndOfDayKilledChild(t *testing.T) {
	spec := os.Getenv(eodCrashChildEnv)
	if spec == "" {
		t.Skip("run by TestEndOfDayKilled")
	}
	dbPath, port, _ := strings.Cut(spec, "|")
	db, err := store.Open(context.Background(), dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var eods, totals atomic.Int32
	c := &eodCounter{eods: &eods, totals: &totals, crashAt: device.EventPrint, crashed: make(chan struct{})}
	r := newRig(t, rigOptions{db: db, path: port, wrap: func(d device.Terminal) device.Terminal {
		c.DiagnosticTerminal = d.(device.DiagnosticTerminal)
		return c
	}})
	p, err := r.svc.Create(context.Background(), sale(2500), caller("eod-kill"))
	if err != nil {
		t.Fatal(err)
	}
	final(t, r.svc, p.ID, 10*time.Second)
	go r.svc.EndOfDay(context.Background(), "t1")
	select {
	case <-c.crashed:
		fmt.Println("SETTLED")
	case <-time.After(20 * time.Second):
		t.Fatal("end of day never reached its receipt")
	}
	time.Sleep(30 * time.Second) // the parent kills us long before
	t.Fatal("not killed")
}

// TestEndOfDayKilled: the daemon is killed (SIGKILL) after End-of-Day
// reached the terminal and the terminal settled, before posgate recorded
// the result. The restarted daemon finds the end-of-day open, asks the
// terminal for its turnover instead of sending End-of-Day again, and
// records it completed with the total: one settlement.
func TestEndOfDayKilled(t *testing.T) {
	if os.Getenv(eodCrashChildEnv) != "" {
		t.Skip("child")
	}
	zs, path := simulatedTerminal(t, terminal.Options{})
	dbPath := filepath.Join(t.TempDir(), "posgate.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestEndOfDayKilledChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), eodCrashChildEnv+"="+dbPath+"|"+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.After(30 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("child exited before the terminal settled")
			}
			if l == "SETTLED" {
				break wait
			}
		case <-timeout:
			t.Fatal("child never reported the settlement")
		}
	}
	if n := settled(zs); n != 1 {
		t.Fatalf("the terminal should have settled the sale: %+v", zs.Journal())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	cmd.Wait()

	db, err := store.Open(context.Background(), dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var state string
	if err := db.Read.QueryRow(`SELECT state FROM terminal_operations WHERE open = 1`).Scan(&state); err != nil || state != string(payment.EndOfDaySent) {
		t.Fatalf("the killed daemon left %q, %v; want an open end-of-day, sent", state, err)
	}
	var eods, totals atomic.Int32
	r := newRig(t, rigOptions{db: db, path: path, wrap: func(d device.Terminal) device.Terminal {
		return &eodCounter{DiagnosticTerminal: d.(device.DiagnosticTerminal), eods: &eods, totals: &totals}
	}})
	list, err := r.svc.EndOfDays(context.Background(), "t1", 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("end of days after the restart: %+v, %v", list, err)
	}
	if eod := list[0]; eod.State != payment.EndOfDayCompleted || eod.Total != 2500 || !eod.Reconciled {
		t.Fatalf("after the restart: %+v, want completed 2500, reconciled", eod)
	}
	if eods.Load() != 0 || totals.Load() != 1 {
		t.Fatalf("the restart sent End-of-Day %d times and Turnover Totals %d times; want 0 and 1", eods.Load(), totals.Load())
	}
	if n := settled(zs); n != 1 {
		t.Fatalf("%d entries settled, want 1", n)
	}
}
