//go:build linux && cgo

package api_test

import (
	"testing"

	"github.com/posgate/posgate/internal/slowvfs"
	"github.com/posgate/posgate/store"
)

// BenchmarkPaymentFirstByteSlowDisk is BenchmarkPaymentFirstByte/idle on
// a disk whose every fsync takes 5 ms longer, as an SD card's or eMMC's
// (internal/slowvfs): the payment's one commit before its first byte
// waits for that flush. Compare with BenchmarkPaymentFirstByte/idle of
// the same run.
// The delay is slowvfs.BenchDelay (POSGATE_BENCH_FSYNC).
func BenchmarkPaymentFirstByteSlowDisk(b *testing.B) {
	d, err := slowvfs.BenchDelay()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fsync="+d.String(), func(b *testing.B) {
		if err := slowvfs.Register(d); err != nil {
			b.Fatal(err)
		}
		benchFirstByte(b, 0, store.Options{VFS: slowvfs.Name})
	})
}
