//go:build linux || darwin

package fiscal_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/simulator/printer"
	"github.com/posgate/posgate/store"
)

// zCrashChildEnv tells the re-executed test binary to run the daemon
// side of TestZReportKilled: "when|dbpath|spec".
const zCrashChildEnv = "POSGATE_TEST_ZREPORT_CRASH_CHILD"

// killAround kills the process with SIGKILL right before or right after
// the printer executes the Z report.
type killAround struct {
	fiscal.OpPrinter
	after bool
}

func (k killAround) ZReport(ctx context.Context) (device.Report, error) {
	if k.after {
		if _, err := k.OpPrinter.ZReport(ctx); err != nil {
			return device.Report{}, err
		}
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not caught
}

// TestZReportCrashChild is the daemon side of TestZReportKilled.
func TestZReportCrashChild(t *testing.T) {
	spec := os.Getenv(zCrashChildEnv)
	if spec == "" {
		t.Skip("run by TestZReportKilled")
	}
	parts := strings.SplitN(spec, "|", 3)
	ctx := context.Background()
	db, err := store.Open(ctx, parts[1], store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	drv, err := datecs.Open(ctx, parts[2], datecs.Options{Ledger: fiscal.NewLedger(db), Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = fiscal.NewPrinterOps(db).Report(ctx, killAround{OpPrinter: drv, after: parts[0] == "after"}, "p1", fiscal.OpZReport,
		fiscal.Op{Scope: "key_1", Key: "z-killed"})
	t.Fatalf("not killed: %v", err)
}

// TestZReportKilled (issue 11 part 12): the daemon is killed (SIGKILL)
// right after the printer printed a Z report, before the answer was
// recorded, or right before the report was sent. After the restart the
// retry of the same request leaves exactly one Z report on the printer.
func TestZReportKilled(t *testing.T) {
	if os.Getenv(zCrashChildEnv) != "" {
		t.Skip("child")
	}
	for _, when := range []string{"after", "before"} {
		t.Run(when, func(t *testing.T) {
			sim, spec := simPrinter(t, printer.Options{})
			dbPath := filepath.Join(t.TempDir(), "posgate.db")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestZReportCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s", zCrashChildEnv, when, dbPath, spec))
			out, _ := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed (%v):\n%s", cmd.ProcessState, out)
			}
			want := map[string]int{"after": 1, "before": 0}[when]
			if got := zReports(sim); got != want {
				t.Fatalf("%d Z reports when killed %s printing, want %d", got, when, want)
			}

			db, err := store.Open(ctx, dbPath, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			drv := connectDriver(t, spec, db)
			res, err := fiscal.NewPrinterOps(db).Report(ctx, drv, "p1", fiscal.OpZReport, fiscal.Op{Scope: "key_1", Key: "z-killed"})
			if err != nil {
				t.Fatalf("retry after restart: %v", err)
			}
			if n := zReports(sim); n != 1 || res.Report.Number != 1 || res.Recovered != (when == "after") {
				t.Fatalf("%d Z reports, result %+v (report %+v); want exactly one, number 1", n, res, res.Report)
			}
		})
	}
}
