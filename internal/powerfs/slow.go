package powerfs

import (
	"sync"
	"sync/atomic"
	"time"
)

// slowSync models slow storage (an SD card, eMMC): every fsync takes a
// fixed extra time, one at a time, as a device's cache flushes do.
type slowSync struct {
	delay atomic.Int64 // nanoseconds; 0: off
	mu    sync.Mutex   // serializes the delays, one flush at a time
}

// SetFsyncDelay makes every later fsync, of a file or a directory, take d
// longer (0 turns it off). Delayed fsyncs queue one behind another, so the
// FS completes at most one fsync per d, like a card flushing its cache.
// The delay comes before the fsync takes effect: a power cut during it
// leaves the data not durable and the fsync fails. Safe to call while
// mounted.
func (fsys *FS) SetFsyncDelay(d time.Duration) {
	fsys.slow.delay.Store(int64(d))
}

// waitFsync sleeps the fsync delay, if any. Called without fsys.mu, so
// reads and writes go on meanwhile.
func (fsys *FS) waitFsync() {
	d := time.Duration(fsys.slow.delay.Load())
	if d <= 0 {
		return
	}
	fsys.slow.mu.Lock()
	time.Sleep(d)
	fsys.slow.mu.Unlock()
}
