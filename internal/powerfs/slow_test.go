//go:build linux

package powerfs_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
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
