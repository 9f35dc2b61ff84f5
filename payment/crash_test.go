//go:build linux || darwin

package payment_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/posgate/posgate/store"
)

// crashChildEnv tells the re-executed test binary to run the daemon side
// of TestCrashAfterApproval: "protocol|dbpath|pty" (zvt) or
// "protocol|dbpath|addr|rootfile" (nexo).
const crashChildEnv = "POSGATE_TEST_PAYMENT_CRASH_CHILD"

// stallAfterApproval passes everything through until the terminal starts
// printing the receipt of an approved sale, which it does only after
// posgate acknowledged the Status-Information, so the terminal has
// committed the charge. Then it reports on approved and never returns:
// the cashier never gets the answer.
type stallAfterApproval struct {
	device.Terminal
	once     sync.Once
	approved chan struct{}
}

func (s *stallAfterApproval) Authorize(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	return s.Terminal.Authorize(ctx, c, func(ctx context.Context, e device.TxEvent) error {
		if e.Kind == device.EventPrint {
			s.once.Do(func() { close(s.approved) })
			<-ctx.Done()
			return ctx.Err()
		}
		return h(ctx, e)
	})
}

// TestCrashChild is the daemon side of TestCrashAfterApproval, run in a
// child process that the parent kills with SIGKILL.
func TestCrashChild(t *testing.T) {
	spec := os.Getenv(crashChildEnv)
	if spec == "" {
		t.Skip("run by TestCrashAfterApproval")
	}
	proto, rest, _ := strings.Cut(spec, "|")
	dbPath, port, _ := strings.Cut(rest, "|")
	db, err := store.Open(context.Background(), dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stall := &stallAfterApproval{approved: make(chan struct{})}
	r := newRig(t, rigOptions{protocol: proto, db: db, path: port, wrap: func(d device.Terminal) device.Terminal {
		stall.Terminal = d
		return stall
	}})
	p, err := r.svc.Create(context.Background(), sale(4321), caller("crash"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("PAYMENT %s\n", p.ID)
	select {
	case <-stall.approved:
		fmt.Println("APPROVED")
	case <-time.After(20 * time.Second):
		t.Fatal("terminal never approved")
	}
	time.Sleep(30 * time.Second) // the parent kills us long before
	t.Fatal("not killed")
}

func TestCrashAfterApproval(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("child")
	}
	eachProtocol(t, testCrashAfterApproval)
}

func testCrashAfterApproval(t *testing.T, proto string) {
	var (
		sim  simTerm
		path string
	)
	if proto == "nexo" {
		s := serveNexo(t, terminal.Options{})
		sim, path = nexoSim{s.sim}, s.spec()
	} else {
		var zs *terminal.Simulator
		zs, path = simulatedTerminal(t, terminal.Options{})
		sim = zvtSim{zs}
	}
	dbPath := filepath.Join(t.TempDir(), "posgate.db")

	// 1. The daemon, in a child process, starts a sale; the terminal
	// approves and commits it; the child is killed before it tells the
	// cashier.
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+proto+"|"+dbPath+"|"+path)
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
	var id string
	timeout := time.After(30 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("child exited before the approval")
			}
			if rest, ok := strings.CutPrefix(l, "PAYMENT "); ok {
				id = rest
			}
			if l == "APPROVED" {
				break wait
			}
		case <-timeout:
			t.Fatal("child never reported the approval")
		}
	}
	if j := sim.Journal(); len(j) != 1 || !j[0].Approved {
		t.Fatalf("the terminal should have committed the sale: %+v", j)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, not SIGKILL", cmd.ProcessState)
	}

	// 2. What the child left: the payment in progress, its approval
	// persisted before it was acknowledged.
	db, err := store.Open(context.Background(), dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var status string
	if err := db.Read.QueryRow(`SELECT status FROM payments WHERE id = ?`, id).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != string(payment.StatusInProgress) {
		t.Fatalf("left %s, want in_progress", status)
	}

	// 3. Restart in-process: the terminal is reconciled before it takes
	// new work, and the committed charge is reversed.
	r := newRig(t, rigOptions{protocol: proto, db: db, path: path})
	p, err := r.svc.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != payment.StatusTimeout || p.Resolution != payment.ResolutionReversed || p.Reversal == nil {
		t.Fatalf("after restart: status %s resolution %q reversal %+v evidence %+v", p.Status, p.Resolution, p.Reversal, p.Evidence)
	}
	if payRef(p) == "" || p.Evidence == nil || p.Evidence.Terminal == nil {
		t.Fatalf("evidence missing: %+v", p)
	}
	if got, want := eventTypes(events(t, db)), []string{payment.EventTimeout, payment.EventReversed}; !slices.Equal(got, want) {
		t.Fatalf("events=%v, want %v", got, want)
	}
	// The cashier's retry finds the same payment: nothing is charged again.
	again, err := r.svc.Create(context.Background(), sale(4321), caller("crash"))
	if err != nil || again.ID != id {
		t.Fatalf("retry: %v, id %s want %s", err, again.ID, id)
	}
	var sales, reversals int
	for _, e := range sim.Journal() {
		switch e.Kind {
		case "sale":
			sales++
			if !e.Reversed {
				t.Fatalf("sale not reversed: %+v", e)
			}
		case "reversal":
			reversals++
		}
	}
	if sales != 1 || reversals != 1 {
		t.Fatalf("journal: %d sales, %d reversals, want exactly one charge, reversed: %+v", sales, reversals, sim.Journal())
	}
}
