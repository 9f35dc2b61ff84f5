// Package slowvfs gives benchmarks a disk whose fsync is as slow as an SD
// card's or eMMC's: a SQLite VFS that behaves exactly as the default one
// (real files, the kernel's page cache, a real fsync) except that every
// sync of a file waits a configurable delay first, one at a time, as a
// card flushes its cache. Open a store with store.Options{VFS:
// slowvfs.Name} after Register.
//
// It models slow storage the way the daemon meets it: writes land in the
// page cache in microseconds, and only the flush is slow. The FUSE slow
// mode of internal/powerfs (SetFsyncDelay) models the same flush, but each
// write there is a round trip to a FUSE server, which adds milliseconds
// to every commit that no real filesystem adds. Power cuts stay
// powerfs's: this package loses nothing.
//
// Test-only: nothing in the daemon imports it.
package slowvfs
