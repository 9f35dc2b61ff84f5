//go:build linux

package powerfs_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posgate/posgate/internal/powerfs"
)

// TestCapacity: past the capacity a growing write fails with ENOSPC, statfs reports the space left, overwrites in place
// still work, and raising the capacity lets the same write through.
func TestCapacity(t *testing.T) {
	fsys, mnt := mount(t)
	path := filepath.Join(mnt, "f")
	writeFile(t, path, make([]byte, 3000), true)
	fsys.SetCapacity(16 << 10)
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if free := st.Bavail * uint64(st.Bsize); free > 16<<10-3000 || free < 8<<10 {
		t.Fatalf("statfs: %d bytes available, want about %d", free, 16<<10-3000)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, 20<<10), 3000); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past the capacity: %v, want ENOSPC", err)
	}
	if err := f.Truncate(1 << 20); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("truncate past the capacity: %v, want ENOSPC", err)
	}
	// A write may stop part-way at the limit, as on a real disk.
	if got := fsys.Used(); got > 16<<10 {
		t.Fatalf("used %d, past the capacity %d", got, 16<<10)
	}
	if _, err := f.WriteAt([]byte("in place"), 0); err != nil {
		t.Fatalf("overwrite in place on a full disk: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	fsys.SetCapacity(0)
	if _, err := f.WriteAt(make([]byte, 20<<10), 3000); err != nil {
		t.Fatalf("write after the space came back: %v", err)
	}
}

// TestUnmountStuck: an Unmount that blocks (go-fuse's Server.Unmount
// waiting for its loops, as it did for 10+ minutes on a loaded machine)
// gives up at its timeout, aborts the connection and detaches the mount,
// and says so; nothing is left mounted.
func TestUnmountStuck(t *testing.T) {
	fsys, mnt := mount(t)
	writeFile(t, filepath.Join(mnt, "f"), []byte("x"), true)
	syncDir(t, mnt)
	release := powerfs.StallUnmount(fsys)
	defer release()
	fsys.SetUnmountTimeout(500 * time.Millisecond)
	start := time.Now()
	err := fsys.Unmount()
	took := time.Since(start)
	if !errors.Is(err, powerfs.ErrUnmountStuck) {
		t.Fatalf("stuck unmount: %v, want ErrUnmountStuck", err)
	}
	if took > 3*time.Second {
		t.Fatalf("stuck unmount returned after %v, want about its 500 ms timeout", took)
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), " "+mnt+" ") {
		t.Fatalf("%s still mounted after a stuck unmount", mnt)
	}
	// The disk is usable again: the next boot mounts it.
	if err := fsys.Reset(powerfs.LossDrop, nil); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Mount(mnt); err != nil {
		t.Fatal(err)
	}
	if got := content(t, filepath.Join(mnt, "f")); got != "x" {
		t.Fatalf("after the remount f=%q, want x", got)
	}
	release()
}

// TestUnmountAlreadyGone: a mount someone else detached is unmounted
// without an error (umount says EINVAL; seen when another test binary
// detached every powerfs mount on the machine), and the disk mounts
// again.
func TestUnmountAlreadyGone(t *testing.T) {
	fsys, mnt := mount(t)
	writeFile(t, filepath.Join(mnt, "f"), []byte("x"), true)
	syncDir(t, mnt)
	if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Unmount(); err != nil {
		t.Fatalf("unmount of a detached mount: %v, want nil", err)
	}
	if err := fsys.Unmount(); !errors.Is(err, powerfs.ErrNotMounted) {
		t.Fatalf("second unmount: %v, want ErrNotMounted", err)
	}
	if err := fsys.Reset(powerfs.LossDrop, nil); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Mount(mnt); err != nil {
		t.Fatal(err)
	}
	if got := content(t, filepath.Join(mnt, "f")); got != "x" {
		t.Fatalf("after the remount f=%q, want x", got)
	}
}

// deadlineChildEnv makes TestDeadlineChild hang under a short deadline.
const deadlineChildEnv = "POWERFS_DEADLINE_CHILD"

// TestDeadlineChild is TestDeadlineNamesTheSeed's hung test, run in a
// child process.
func TestDeadlineChild(t *testing.T) {
	if os.Getenv(deadlineChildEnv) == "" {
		t.Skip("run by TestDeadlineNamesTheSeed")
	}
	deadline(t, 300*time.Millisecond, func() string { return "seed 4242 (a stuck cut)" })
	time.Sleep(time.Minute) // hangs, as a stuck unmount did
}

// TestDeadlineNamesTheSeed: a hung seed ends its test binary at its
// deadline, naming the seed, instead of at go test's -timeout.
func TestDeadlineNamesTheSeed(t *testing.T) {
	// A mount of this process, which the child's give-up must leave
	// alone: the mount table is shared, the mount is not the child's.
	fsys, mnt := mount(t)
	writeFile(t, filepath.Join(mnt, "f"), []byte("x"), true)
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeadlineChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), deadlineChildEnv+"=1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err == nil {
		t.Fatalf("the hung child passed:\n%s", out)
	}
	if took > 20*time.Second {
		t.Fatalf("the hung child ran %v; its deadline was 300 ms", took)
	}
	for _, want := range []string{"--- FAIL: TestDeadlineChild: still running after 300ms", "seed 4242", "goroutine "} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the hung child's output lacks %q:\n%.3000s", want, out)
		}
	}
	if got := content(t, filepath.Join(mnt, "f")); got != "x" {
		t.Fatalf("after the child gave up, this process's f=%q, want x", got)
	}
	if err := fsys.Unmount(); err != nil {
		t.Fatalf("unmount after the child gave up: %v", err)
	}
}
