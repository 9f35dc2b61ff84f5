package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrLocked is returned by LockDir when another process holds the lock.
var ErrLocked = errors.New("store: data directory is locked by another process")

// LockFileName is the file in the data directory that `posgate serve`
// holds an exclusive lock on for as long as it runs.
const LockFileName = "posgate.lock"

// DirLock is an exclusive advisory lock (flock) on a data directory. The
// kernel drops it when the process ends, however it ends, so a kill -9 or a
// power cut never leaves a stale lock behind.
type DirLock struct{ f *os.File }

// LockDir takes the data directory's lock without waiting. It returns
// ErrLocked when another process (a running daemon, a restore) holds it.
// The CLI's keys and certs commands do not take it: they share the store
// with a running daemon through SQLite's own locks.
//
// It creates dir (0700, its entry made durable) when it does not exist.
func LockDir(dir string) (*DirLock, error) {
	if err := mkdirDurable(dir); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &DirLock{f: f}, nil
}

// Unlock releases the lock.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}
