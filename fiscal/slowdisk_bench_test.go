//go:build linux

package fiscal_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/posgate/posgate/internal/powerfs"
	"github.com/posgate/posgate/store"
)

// BenchmarkInvoiceSlowDisk creates invoices (validate, number, sign,
// commit with event and print job, synchronous=FULL) on the project's
// FUSE filesystem with every fsync delayed as on an SD card or eMMC
// (internal/powerfs SetFsyncDelay), at 1 and 16 concurrent callers, with
// group commit and without (Options.SerialCommit), beside the same runs
// with no added delay. Metrics: invoices/s and p99 in ms. Needs root and
// /dev/fuse; skipped otherwise.
func BenchmarkInvoiceSlowDisk(b *testing.B) {
	if err := powerfs.Available(); err != nil {
		b.Skip(err)
	}
	for _, fsync := range []time.Duration{0, 5 * time.Millisecond} {
		for _, serial := range []bool{false, true} {
			mode := "group"
			if serial {
				mode = "serial"
			}
			for _, callers := range []int{1, 16} {
				b.Run(fmt.Sprintf("fsync=%v/%s/callers=%d", fsync, mode, callers), func(b *testing.B) {
					benchInvoices(b, fsync, serial, callers)
				})
			}
		}
	}
}

func benchInvoices(b *testing.B, fsync time.Duration, serial bool, callers int) {
	mnt := b.TempDir()
	fsys := powerfs.New()
	if err := fsys.Mount(mnt); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := fsys.Unmount(); err != nil && !errors.Is(err, powerfs.ErrNotMounted) {
			b.Errorf("unmount: %v", err)
		}
	})
	fsys.SetFsyncDelay(fsync)
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(mnt, "data", "posgate.db"), store.Options{SerialCommit: serial})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	runInvoices(b, newEnvOn(b, db, "p1"), callers)
}
