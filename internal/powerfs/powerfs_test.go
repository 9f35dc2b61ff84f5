//go:build linux

package powerfs_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/posgate/posgate/internal/powerfs"
)

// requireFUSE skips a test that needs to mount, unless POWERCUT_REQUIRED=1
// (CI) makes that a failure. It puts the test under testDeadline; a test
// that runs seeds stops that (the returned func) and puts each seed under
// seedDeadline instead.
func requireFUSE(t *testing.T) (stopDeadline func()) {
	t.Helper()
	if err := powerfs.Available(); err != nil {
		if os.Getenv("POWERCUT_REQUIRED") == "1" {
			t.Fatalf("POWERCUT_REQUIRED=1 but %v", err)
		}
		t.Skip(err)
	}
	return deadline(t, testDeadline, func() string { return "the whole test (no seed)" })
}

// Deadlines of the fault tests. A seed of TestPowerCut takes about half
// a second and waits at most about 45 s (webhook and print waits) when
// it fails honestly; a minute and a half more means it hangs.
const (
	testDeadline = 3 * time.Minute
	seedDeadline = 90 * time.Second
)

// mount mounts a new FS on a temp dir, unmounted again at cleanup.
func mount(t *testing.T) (*powerfs.FS, string) {
	t.Helper()
	requireFUSE(t)
	mnt := t.TempDir()
	fsys := powerfs.New()
	if err := fsys.Mount(mnt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fsys.Unmount(); err != nil && !errors.Is(err, powerfs.ErrNotMounted) {
			t.Errorf("unmount: %v", err)
		}
	})
	return fsys, mnt
}

// reboot cuts the power (if not cut yet), and mounts what survived.
func reboot(t *testing.T, fsys *powerfs.FS, mnt string, loss powerfs.Loss, rng *rand.Rand) {
	t.Helper()
	fsys.Cut()
	if err := fsys.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Reset(loss, rng); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Mount(mnt); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, data []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func syncDir(t *testing.T, path string) {
	t.Helper()
	d, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync dir %s: %v", path, err)
	}
}

// content returns the file's content, or "<absent>".
func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "<absent>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDurability(t *testing.T) {
	tests := []struct {
		name string
		do   func(t *testing.T, mnt string)
		want string // content of mnt/f after the cut
	}{
		{"FileAndDirSynced", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), []byte("v1"), true)
			syncDir(t, mnt)
		}, "v1"},
		{"NothingSynced", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), []byte("v1"), false)
		}, "<absent>"},
		{"UnsyncedOverwriteReverts", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), []byte("v1"), true)
			syncDir(t, mnt)
			writeFile(t, filepath.Join(mnt, "f"), []byte("v2-longer"), false)
		}, "v1"},
		{"NewFileSyncedButNotItsDir", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), []byte("v1"), true)
		}, "<absent>"},
		{"DirSyncedButNotTheFile", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), []byte("v1"), false)
			syncDir(t, mnt)
		}, ""},
		{"RenameWithoutDirSyncKeepsOld", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), []byte("old"), true)
			syncDir(t, mnt)
			writeFile(t, filepath.Join(mnt, "tmp"), []byte("new"), true)
			if err := os.Rename(filepath.Join(mnt, "tmp"), filepath.Join(mnt, "f")); err != nil {
				t.Fatal(err)
			}
		}, "old"},
		{"RenameWithDirSync", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), []byte("old"), true)
			syncDir(t, mnt)
			writeFile(t, filepath.Join(mnt, "tmp"), []byte("new"), true)
			if err := os.Rename(filepath.Join(mnt, "tmp"), filepath.Join(mnt, "f")); err != nil {
				t.Fatal(err)
			}
			syncDir(t, mnt)
		}, "new"},
		{"LinkWithDirSync", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "tmp"), []byte("key"), true)
			if err := os.Link(filepath.Join(mnt, "tmp"), filepath.Join(mnt, "f")); err != nil {
				t.Fatal(err)
			}
			syncDir(t, mnt)
			if err := os.Remove(filepath.Join(mnt, "tmp")); err != nil {
				t.Fatal(err)
			}
		}, "key"},
		{"NewDirNotSyncedInParent", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), []byte("v1"), true)
			syncDir(t, mnt)
			if err := os.Mkdir(filepath.Join(mnt, "d"), 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(mnt, "d", "g"), []byte("lost"), true)
			syncDir(t, filepath.Join(mnt, "d"))
			if _, err := os.Stat(filepath.Join(mnt, "d", "g")); err != nil {
				t.Fatal(err)
			}
		}, "v1"},
		{"UnsyncedTruncateReverts", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), []byte("v1"), true)
			syncDir(t, mnt)
			if err := os.Truncate(filepath.Join(mnt, "f"), 0); err != nil {
				t.Fatal(err)
			}
		}, "v1"},
		{"Fdatasync", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), nil, true)
			syncDir(t, mnt)
			f, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("appended")); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Fdatasync(int(f.Fd())); err != nil {
				t.Fatal(err)
			}
		}, "appended"},
		{"UnlinkWithoutDirSyncComesBack", func(t *testing.T, mnt string) {
			writeFile(t, filepath.Join(mnt, "f"), []byte("v1"), true)
			syncDir(t, mnt)
			if err := os.Remove(filepath.Join(mnt, "f")); err != nil {
				t.Fatal(err)
			}
		}, "v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys, mnt := mount(t)
			tt.do(t, mnt)
			reboot(t, fsys, mnt, powerfs.LossDrop, nil)
			if got := content(t, filepath.Join(mnt, "f")); got != tt.want {
				t.Fatalf("after the cut f=%q, want %q", got, tt.want)
			}
			if _, err := os.Stat(filepath.Join(mnt, "d")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("unsynced dir d: stat err=%v, want not exist", err)
			}
		})
	}
}

func TestArmCut(t *testing.T) {
	fsys, mnt := mount(t)
	f, err := os.Create(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cuts atomic.Int32
	fsys.ArmCut(3, func() { cuts.Add(1) })
	for i := range 2 {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatalf("write %d before the cut: %v", i+1, err)
		}
	}
	if fsys.IsCut() {
		t.Fatal("power cut before the 3rd op")
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("3rd op (fsync): err=%v, want EIO", err)
	}
	if _, err := os.ReadFile(filepath.Join(mnt, "f")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read after the cut: err=%v, want EIO", err)
	}
	if got, want := cuts.Load(), int32(1); got != want {
		t.Fatalf("onCut ran %d times, want %d", got, want)
	}
	f.Close() // unmounting waits for every file to be closed
	reboot(t, fsys, mnt, powerfs.LossDrop, nil)
	if got, want := content(t, filepath.Join(mnt, "f")), "<absent>"; got != want {
		t.Fatalf("after the cut f=%q, want %q", got, want)
	}
	// The power is back on.
	writeFile(t, filepath.Join(mnt, "g"), []byte("ok"), true)
}

// TestLossRandomTearsBySector: unsynced writes survive sector by sector,
// each sector wholly old or wholly new.
func TestLossRandomTearsBySector(t *testing.T) {
	fsys, mnt := mount(t)
	path := filepath.Join(mnt, "f")
	old := bytes.Repeat([]byte{'o'}, 8*512)
	writeFile(t, path, old, true)
	syncDir(t, mnt)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// One write straddling sector boundaries: from the middle of sector
	// 0 to the middle of sector 7.
	if _, err := f.WriteAt(bytes.Repeat([]byte{'n'}, 7*512), 256); err != nil {
		t.Fatal(err)
	}
	f.Close()
	reboot(t, fsys, mnt, powerfs.LossRandom, rand.New(rand.NewPCG(1, 2)))
	got := []byte(content(t, path))
	if len(got) != len(old) {
		t.Fatalf("size %d, want %d", len(got), len(old))
	}
	kept := 0
	for s := range 8 {
		lo, hi := max(s*512, 256), min((s+1)*512, 256+7*512)
		part := got[lo:hi]
		switch {
		case bytes.Count(part, []byte{'n'}) == len(part):
			kept++
		case bytes.Count(part, []byte{'o'}) != len(part):
			t.Fatalf("sector %d is torn inside: %q", s, part)
		}
	}
	if kept == 0 || kept == 8 {
		t.Fatalf("%d of 8 sectors kept; want some but not all with this seed", kept)
	}
}

func TestResetWhileMounted(t *testing.T) {
	fsys, _ := mount(t)
	if err := fsys.Reset(powerfs.LossDrop, nil); !errors.Is(err, powerfs.ErrMounted) {
		t.Fatalf("Reset while mounted: err=%v, want ErrMounted", err)
	}
}

// TestClone: a clone starts from the same durable and unsynced state and
// is independent of the original.
func TestClone(t *testing.T) {
	fsys, mnt := mount(t)
	writeFile(t, filepath.Join(mnt, "f"), []byte("synced"), true)
	syncDir(t, mnt)
	writeFile(t, filepath.Join(mnt, "g"), []byte("unsynced"), false)
	if err := fsys.Unmount(); err != nil {
		t.Fatal(err)
	}
	clone := fsys.Clone()
	if err := clone.Mount(mnt); err != nil {
		t.Fatal(err)
	}
	if got, want := content(t, filepath.Join(mnt, "g")), "unsynced"; got != want {
		t.Fatalf("clone before the cut: g=%q, want %q", got, want)
	}
	writeFile(t, filepath.Join(mnt, "f"), []byte("changed in the clone"), true)
	if err := clone.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := clone.Reset(powerfs.LossDrop, nil); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Mount(mnt); err != nil {
		t.Fatal(err)
	}
	if got, want := content(t, filepath.Join(mnt, "f")), "synced"; got != want {
		t.Fatalf("original after the clone wrote: f=%q, want %q", got, want)
	}
	if got, want := content(t, filepath.Join(mnt, "g")), "unsynced"; got != want {
		t.Fatalf("original after the clone's cut: g=%q, want %q", got, want)
	}
}

// TestUnmountBusy: a file held open makes Unmount abort the connection
// and detach, so closing the file later cannot hang.
func TestUnmountBusy(t *testing.T) {
	fsys, mnt := mount(t)
	f, err := os.Create(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.Unmount(); err == nil {
		t.Fatal("Unmount with a file open: err=nil, want an error")
	}
	done := make(chan error, 1)
	go func() { done <- f.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("closing a file of an aborted mount hangs")
	}
}

// TestFailFsync: the failed fsync forgets the unsynced write, which stays
// visible until the reboot; the next fsync succeeds.
func TestFailFsync(t *testing.T) {
	fsys, mnt := mount(t)
	path := filepath.Join(mnt, "f")
	writeFile(t, path, []byte("v1"), true)
	syncDir(t, mnt)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("v2"), 0); err != nil {
		t.Fatal(err)
	}
	fsys.FailFsync(1)
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("failing fsync: err=%v, want EIO", err)
	}
	if got, want := content(t, path), "v2"; got != want {
		t.Fatalf("after the failed fsync f=%q, want %q", got, want)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync after the failed one: %v", err)
	}
	f.Close()
	reboot(t, fsys, mnt, powerfs.LossDrop, nil)
	if got, want := content(t, path), "v1"; got != want {
		t.Fatalf("after the reboot f=%q, want %q", got, want)
	}
}
