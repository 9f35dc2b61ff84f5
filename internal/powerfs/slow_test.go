//go:build linux

package powerfs_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/internal/powerfs"
)

// SetFsyncDelay adds its delay to every fsync, one at a time, and 0
// turns it off.
func TestFsyncDelay(t *testing.T) {
	fsys, mnt := mount(t)
	f, err := os.Create(filepath.Join(mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("x"); err != nil {
		t.Fatal(err)
	}
	const d = 50 * time.Millisecond
	fsys.SetFsyncDelay(d)
	t0 := time.Now()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < d {
		t.Fatalf("fsync took %v with a %v delay", el, d)
	}
	// Four at once queue behind each other, a directory's too.
	dir, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	t0 = time.Now()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			s := f.Sync
			if i == 0 {
				s = dir.Sync
			}
			if err := s(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if el := time.Since(t0); el < 4*d {
		t.Fatalf("4 concurrent fsyncs took %v, want at least %v", el, 4*d)
	}
	fsys.SetFsyncDelay(0)
	t0 = time.Now()
	for range 5 {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(t0); el >= 5*d {
		t.Fatalf("5 fsyncs without delay took %v", el)
	}
}

// MountChild serves the FS from another process, with its fsync delay;
// the returned function unmounts it and ends that process.
func TestMountChild(t *testing.T) {
	requireFUSE(t)
	mnt := t.TempDir()
	const d = 50 * time.Millisecond
	unmount, err := powerfs.MountChild(mnt, d)
	if err != nil {
		t.Fatal(err)
	}
	done := false
	t.Cleanup(func() {
		if !done {
			_ = unmount()
		}
	})
	if !mountedAt(t, mnt) {
		t.Fatalf("%s is not a mount", mnt)
	}
	// The server is not this process: no FUSE device is open here.
	if fds := openFuseDevices(t); fds != 0 {
		t.Fatalf("this process holds %d /dev/fuse descriptors; the child should", fds)
	}
	p := filepath.Join(mnt, "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("slow"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < d {
		t.Fatalf("fsync took %v with a %v delay", el, d)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "slow" {
		t.Fatalf("read back %q, %v", b, err)
	}
	done = true
	if err := unmount(); err != nil {
		t.Fatal(err)
	}
	if mountedAt(t, mnt) {
		t.Fatalf("%s is still mounted after unmount", mnt)
	}
}

// mountedAt reports whether mountinfo lists a mount at mnt.
func mountedAt(t *testing.T, mnt string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && f[4] == mnt {
			return true
		}
	}
	return false
}

// openFuseDevices counts this process's descriptors open on /dev/fuse.
func openFuseDevices(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == "/dev/fuse" {
			n++
		}
	}
	return n
}
