//go:build linux

package fiscal_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/posgate/posgate/internal/powerfs"
	"github.com/posgate/posgate/internal/slowvfs"
	"github.com/posgate/posgate/store"
)

// BenchmarkInvoiceSlowDisk creates invoices (validate, number, sign,
// commit with event and print job, synchronous=FULL) on storage whose
// every fsync takes a delay longer (5 ms), as on an SD card or eMMC, at 1 and 16
// concurrent callers, with group commit and without
// (Options.SerialCommit, the baseline), beside the same runs with no
// added delay. Metrics: invoices/s and p99 in ms.
//
// disk=vfs is the test's own disk through internal/slowvfs: writes land
// in the page cache as on any filesystem, and each sync waits the delay,
// one at a time. disk=fuse is the project's FUSE filesystem in its slow
// mode, served from a child process (internal/powerfs MountChild): the
// same flush, plus a round trip to the FUSE server for every write, which
// no real filesystem has; it needs root and /dev/fuse and is skipped
// otherwise.
//
// The delay is slowvfs.BenchDelay (POSGATE_BENCH_FSYNC, 5 ms by default).
func BenchmarkInvoiceSlowDisk(b *testing.B) {
	d, err := slowvfs.BenchDelay()
	if err != nil {
		b.Fatal(err)
	}
	for _, fsync := range []time.Duration{0, d} {
		for _, serial := range []bool{false, true} {
			mode := "group"
			if serial {
				mode = "serial"
			}
			for _, callers := range []int{1, 16} {
				b.Run(fmt.Sprintf("disk=vfs/fsync=%v/%s/callers=%d", fsync, mode, callers), func(b *testing.B) {
					benchInvoices(b, "vfs", fsync, serial, callers)
				})
			}
		}
	}
	for _, callers := range []int{1, 16} {
		b.Run(fmt.Sprintf("disk=fuse/fsync=%v/group/callers=%d", d, callers), func(b *testing.B) {
			benchInvoices(b, "fuse", d, false, callers)
		})
	}
}

func benchInvoices(b *testing.B, disk string, fsync time.Duration, serial bool, callers int) {
	dir := b.TempDir()
	opts := store.Options{SerialCommit: serial}
	switch disk {
	case "vfs":
		if err := slowvfs.Register(fsync); err != nil {
			b.Fatal(err)
		}
		opts.VFS = slowvfs.Name
	case "fuse":
		if err := powerfs.Available(); err != nil {
			b.Skip(err)
		}
		unmount, err := powerfs.MountChild(dir, fsync)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			if err := unmount(); err != nil {
				b.Errorf("unmount: %v", err)
			}
		})
	}
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(dir, "data", "posgate.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	runInvoices(b, newEnvOn(b, db, "p1"), callers)
}
