//go:build linux

package powerfs_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/internal/powerfs"
)

// TestPowerCutSQLite shows the harness has teeth: a bare SQLite victim
// with synchronous=NORMAL in the DSN loses acknowledged rows in some
// seeds, while one opened by store.Open (the daemon's DSN) loses none.
func TestPowerCutSQLite(t *testing.T) {
	requireFUSE(t)() // each seed has its own deadline
	cases := []struct {
		sync     string
		seeds    int
		wantLoss bool
	}{
		{"normal", 6, true},
		{"store", 20, false},
	}
	for _, tc := range cases {
		t.Run(tc.sync, func(t *testing.T) {
			mnt := t.TempDir()
			v := &victimRun{sync: tc.sync, rows: 300, mnt: mnt}
			total := v.run(t, 0, 0, nil)
			if total.acked != v.rows || total.lost != 0 {
				t.Fatalf("calibration run without a cut: %+v", total)
			}
			seedsLosing := 0
			start := time.Now()
			list := seeds(t, tc.seeds)
			for _, seed := range list {
				rng := rngFor(seed)
				k := 1 + rng.Int64N(total.ops)
				stop := deadline(t, seedDeadline, func() string {
					return fmt.Sprintf("seed %d (loss %v, cut at op %d of %d); rerun with POWERCUT_SEED=%d", seed, lossFor(seed), k, total.ops, seed)
				})
				res := v.run(t, k, 0, rng, seed)
				stop()
				if res.integrity != "ok" {
					t.Errorf("seed %d (loss %v, cut at op %d of %d): integrity_check: %s", seed, lossFor(seed), k, total.ops, res.integrity)
				}
				if res.lost > 0 {
					seedsLosing++
					if !tc.wantLoss {
						t.Errorf("seed %d (loss %v, cut at op %d of %d): %d of %d acked rows lost; rerun with POWERCUT_SEED=%d",
							seed, lossFor(seed), k, total.ops, res.lost, res.acked, seed)
					}
				}
			}
			t.Logf("%s: %d of %d seeds lost acked rows (%d ops per full run, %v)", tc.sync, seedsLosing, len(list), total.ops, time.Since(start).Round(time.Millisecond))
			if tc.wantLoss && seedsLosing == 0 {
				t.Errorf("synchronous=NORMAL lost no acked row in %d seeds: the harness has no teeth", len(list))
			}
		})
	}
}

// victimRun runs the SQLite victim child on a fresh FS.
type victimRun struct {
	sync string
	rows int
	mnt  string
}

type victimResult struct {
	ops       int64 // mutating operations in the run
	fsyncs    int64 // file fsyncs in the run
	acked     int
	lost      int
	failed    int // commits that returned an error
	integrity string
}

// run mounts a fresh FS, runs the victim with the power cut at op k (0:
// no cut; the power goes after the victim ends) and its failSync-th
// fsync failing (0: none), reboots with the seed's loss and checks every
// acked row is there.
func (v *victimRun) run(t *testing.T, k, failSync int64, rng *rand.Rand, seed ...uint64) victimResult {
	t.Helper()
	r := newRig(t, v.mnt)
	db := filepath.Join(v.mnt, "victim.db")
	var kl killer
	if k > 0 {
		r.fsys.ArmCut(k, kl.kill)
	}
	if failSync > 0 {
		r.fsys.FailFsync(failSync)
	}
	cmd := exec.Command(build(t, "./testdata/victim"), "insert", db, v.sync, strconv.Itoa(v.rows))
	cmd.Dir = os.TempDir()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kl.set(cmd.Process)
	acked := map[int64]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var id int64
		if _, err := fmt.Sscanf(sc.Text(), "acked %d", &id); err == nil {
			acked[id] = true
		}
	}
	err = cmd.Wait()
	if k == 0 && failSync == 0 && err != nil {
		t.Fatalf("victim without a cut: %v\n%s", err, stderr.String())
	}
	res := victimResult{ops: r.fsys.Ops(), fsyncs: r.fsys.Fsyncs(), acked: len(acked), failed: strings.Count(stderr.String(), "failed ")}
	loss := powerfs.LossDrop
	if len(seed) > 0 {
		loss = lossFor(seed[0])
	}
	r.reboot(t, loss, rng)
	got := check(t, db, "victim")
	res.integrity = got.Integrity
	present := map[int64]bool{}
	for _, id := range got.IDs {
		present[id] = true
	}
	for id := range acked {
		if !present[id] {
			res.lost++
		}
	}
	if err := r.fsys.Unmount(); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestFsyncErrorSQLite: one fsync fails (and forgets its data, as Linux
// does) while a victim opened with store.Open keeps committing; after a
// power cut at the end every row it acknowledged is still there.
func TestFsyncErrorSQLite(t *testing.T) {
	requireFUSE(t)() // each seed has its own deadline
	v := &victimRun{sync: "store", rows: 300, mnt: t.TempDir()}
	total := v.run(t, 0, 0, nil)
	if total.acked != v.rows || total.lost != 0 {
		t.Fatalf("calibration run: %+v", total)
	}
	failedCommits := 0
	list := seeds(t, 20)
	for _, seed := range list {
		rng := rngFor(seed)
		k := 1 + rng.Int64N(total.fsyncs)
		stop := deadline(t, seedDeadline, func() string {
			return fmt.Sprintf("seed %d (fsync %d of %d fails); rerun with POWERCUT_SEED=%d", seed, k, total.fsyncs, seed)
		})
		res := v.run(t, 0, k, rng, seed)
		stop()
		failedCommits += res.failed
		if res.integrity != "ok" {
			t.Errorf("seed %d (fsync %d of %d fails): integrity_check: %s", seed, k, total.fsyncs, res.integrity)
		}
		if res.lost > 0 {
			t.Errorf("seed %d (fsync %d of %d fails, loss %v): %d of %d acked rows lost; rerun with POWERCUT_SEED=%d",
				seed, k, total.fsyncs, lossFor(seed), res.lost, res.acked, seed)
		}
	}
	t.Logf("%d seeds, %d commits failed on the fsync error (%d fsyncs per run)", len(list), failedCommits, total.fsyncs)
}
