//go:build linux

package powerfs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/internal/powerfs"
)

// binDir holds the binaries the tests build, outside any mount.
var binDir struct {
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	powerfs.ServeIfChild() // TestMountChild's child
	code := m.Run()
	if binDir.path != "" {
		os.RemoveAll(binDir.path)
	}
	os.Exit(code)
}

// built maps a package to its binary, built once per test process.
var built sync.Map // package path -> func() (string, error)

// build builds pkg (a package path, or ./testdata/… relative to this
// package) without -race into a temp dir outside any mount, once per test
// process, and returns the binary's path. Children are the hot path of
// a power-cut run: a race-built SQLite child is 10-25x slower here.
func build(t *testing.T, pkg string) string {
	t.Helper()
	binDir.once.Do(func() { binDir.path, binDir.err = os.MkdirTemp("", "powerfs-bin-") })
	if binDir.err != nil {
		t.Fatal(binDir.err)
	}
	f, _ := built.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		out := filepath.Join(binDir.path, filepath.Base(pkg))
		cmd := exec.Command(goTool(), "build", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
		}
		return out, nil
	}))
	path, err := f.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// goTool is the go command of the toolchain running the test.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// checkResult is what `victim check` reports.
type checkResult struct {
	Integrity string  `json:"integrity"`
	IDs       []int64 `json:"ids"`
}

// check runs `victim check` on db as a child and returns its result.
func check(t *testing.T, db, table string) checkResult {
	t.Helper()
	cmd := exec.Command(build(t, "./testdata/victim"), "check", db, table)
	cmd.Dir = os.TempDir() // never a cwd inside the mount
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("victim check: %v\n%s", err, stderr.String())
	}
	var res checkResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("victim check output %q: %v", out, err)
	}
	return res
}

// seeds returns the seeds to run: POWERCUT_SEED reruns exactly one,
// POWERCUT_SEEDS sets how many (1…n), else 1…def.
func seeds(t *testing.T, def int) []uint64 {
	t.Helper()
	if s := os.Getenv("POWERCUT_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("POWERCUT_SEED=%q: %v", s, err)
		}
		return []uint64{seed}
	}
	n := def
	if s := os.Getenv("POWERCUT_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("POWERCUT_SEEDS=%q: want a positive number", s)
		}
		n = v
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// lossFor alternates the loss mode by seed: odd seeds tear and reorder
// unsynced writes, even seeds drop them all.
func lossFor(seed uint64) powerfs.Loss {
	if seed%2 == 1 {
		return powerfs.LossRandom
	}
	return powerfs.LossDrop
}

// rngFor is the one source of randomness for a seed: the cut point, then
// what survives.
func rngFor(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x90579a7e)) }

// rig is one mounted FS with its mount point, unmounted at cleanup.
type rig struct {
	fsys *powerfs.FS
	mnt  string
}

func newRig(t *testing.T, mnt string) *rig {
	t.Helper()
	r := &rig{fsys: powerfs.New(), mnt: mnt}
	if err := r.fsys.Mount(mnt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.fsys.Unmount(); err != nil && !errors.Is(err, powerfs.ErrNotMounted) {
			t.Errorf("unmount: %v", err)
		}
	})
	return r
}

// reboot cuts the power (if the armed cut has not fired), unmounts,
// loses what was not durable and mounts the rest.
func (r *rig) reboot(t *testing.T, loss powerfs.Loss, rng *rand.Rand) {
	t.Helper()
	r.fsys.Cut()
	if err := r.fsys.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := r.fsys.Reset(loss, rng); err != nil {
		t.Fatal(err)
	}
	if err := r.fsys.Mount(r.mnt); err != nil {
		t.Fatal(err)
	}
}

// killer SIGKILLs a child by pid when the power is cut. The cut may come
// before the child is registered; kill then runs at registration.
type killer struct {
	mu   sync.Mutex
	proc *os.Process
	cut  bool
}

func (k *killer) set(p *os.Process) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.proc = p
	if k.cut {
		_ = p.Kill()
	}
}

// kill is the cut callback.
func (k *killer) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cut = true
	if k.proc != nil {
		_ = k.proc.Kill()
	}
}

// waitTimeout bounds how long a test waits for a child it killed.
const waitTimeout = 10 * time.Second

// listenTimeout bounds how long a test waits for a daemon it started to
// listen. A restart recovers what the cut left (the WAL, the pending
// print jobs and payments) before it binds, and on a loaded 2-core
// machine that took more than waitTimeout; a seed still ends well within
// its seedDeadline.
const listenTimeout = 30 * time.Second

// deadline ends the test binary if t is still running after d: a hung
// fault test prints what it was doing (what: the seed, its loss and cut,
// and how to rerun it) and every goroutine's stack, detaches the
// powerfs mounts, and exits, instead of hanging until go test's -timeout
// (12 minutes in make test) kills it without a word about the seed. The
// returned stop disarms it; cleanup does too.
func deadline(t *testing.T, d time.Duration, what func() string) (stop func()) {
	t.Helper()
	name := t.Name()
	timer := time.AfterFunc(d, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(os.Stderr, "--- FAIL: %s: still running after %v: %s\n\n%s\n", name, d, what(), buf)
		children.killAll()
		detachPowerfsMounts()
		os.Exit(2)
	})
	stop = func() { timer.Stop() }
	t.Cleanup(stop)
	return stop
}

// detachPowerfsMounts lazily unmounts every powerfs mount of this
// process, so a test binary that gives up leaves none behind. Only its
// own: the mount table is shared with every other test binary on the
// machine, and detaching their mounts failed them (their unmount: EINVAL).
func detachPowerfsMounts() { powerfs.DetachMounts() }

// children are the daemons the tests started and have not reaped, for
// deadline to kill before the test binary exits: a test ends the
// processes it starts, also when it gives up.
var children = &childSet{procs: map[int]*os.Process{}}

type childSet struct {
	mu    sync.Mutex
	procs map[int]*os.Process
}

func (c *childSet) add(p *os.Process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.procs[p.Pid] = p
}

func (c *childSet) remove(p *os.Process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.procs, p.Pid)
}

func (c *childSet) killAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		_ = p.Kill()
	}
}
