// Package powerfs is a FUSE filesystem that models a disk losing power, for
// testing that what posgate acknowledges survives a power cut.
//
// It keeps two states of every file and directory: what readers see, and
// what is durable. Only fsync moves data to the durable state: fsync of a
// file makes its content durable; fsync of a directory makes its entries
// (creates, links, unlinks, renames) durable. That is the strict POSIX
// reading (a new file survives only once its directory is fsynced too),
// stricter than ext4 in practice, so a test that passes here does not lean
// on a particular filesystem's habits.
//
// ArmCut cuts the power at a chosen operation: that operation and every
// later one fail with EIO, so no fsync after the cut can be acknowledged.
// After Unmount, Reset throws away what was not durable (or keeps a random
// subset of unsynced 512-byte sectors, modelling torn and reordered
// writes) and Mount serves what a restarted machine would find.
//
// It is test-only. It does not exercise a real filesystem's code, and it
// ignores the durability of timestamps and permissions; see
// shared/research/powercut.md for what it catches and what it cannot.
// Mounting needs root and /dev/fuse; no fusermount binary is used.
package powerfs
