package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"
)

// ErrLowSpace is returned by Writable when the data directory's
// filesystem has less than MinFree bytes left for posgate.
var ErrLowSpace = errors.New("data directory almost full")

// MinFree is the free space below which Writable reports the store not
// writable: a commit that grows the WAL or the database would fail soon,
// and a small probe row can still fit in space SQLite reuses.
const MinFree = 1 << 20

// probeTTL is how long Writable's answer is reused, so a monitor polling
// /healthz costs at most one small commit a second.
const probeTTL = time.Second

// probeTimeout bounds one probe: a writer that holds the lock longer
// counts as not writable.
const probeTimeout = time.Second

// probe is the cached result of the last write probe.
type probe struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

// Unavailable reports whether err means the store cannot take writes now,
// for reasons of the disk or the database file rather than of the request:
// SQLite's SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY, SQLITE_CANTOPEN,
// SQLITE_BUSY, SQLITE_LOCKED, SQLITE_PROTOCOL, SQLITE_CORRUPT and
// SQLITE_NOTADB (with their extended codes), or ENOSPC, EDQUOT, EIO and
// EROFS from the filesystem, wrapped or not, and ErrLowSpace. Such a fault
// may pass once space or the disk is back; callers answer 503, never 500.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	// ErrBatchAborted: another caller's cancellation rolled back the shared
	// transaction this write was in; nothing of it was written, and a retry
	// goes into the next batch.
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EROFS, ErrLowSpace, ErrBatchAborted} {
		if errors.Is(err, e) {
			return true
		}
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrFull, sqlite3.ErrIoErr, sqlite3.ErrReadonly, sqlite3.ErrCantOpen,
			sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrProtocol, sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
			return true
		}
		return false
	}
	return false
}

// Writable reports whether the store takes a write now: the data
// directory's filesystem has at least MinFree bytes available, and a
// commit of the probe row (store_probe) succeeds within a second. The
// answer is reused for a second, so polling it is cheap. A nil error
// means writable; otherwise Unavailable(err) is true unless ctx ended.
func (db *DB) Writable(ctx context.Context) error {
	db.probe.mu.Lock()
	defer db.probe.mu.Unlock()
	if !db.probe.at.IsZero() && time.Since(db.probe.at) < probeTTL {
		return db.probe.err
	}
	err := db.writeProbe(ctx)
	if ctx.Err() == nil {
		db.probe.at, db.probe.err = time.Now(), err
	}
	return err
}

// SpaceLeft reports whether the data directory's filesystem has at least
// MinFree bytes available (nil), or not (ErrLowSpace, wrapped), without
// writing; the answer is reused for a second. Work the store must be able
// to finish once it has started (a payment: its terminal's answer has to
// be recorded) asks it first, so it does not start on a full disk.
func (db *DB) SpaceLeft() error {
	db.space.mu.Lock()
	defer db.space.mu.Unlock()
	if !db.space.at.IsZero() && time.Since(db.space.at) < probeTTL {
		return db.space.err
	}
	db.space.at, db.space.err = time.Now(), db.statSpace()
	return db.space.err
}

func (db *DB) statSpace() error {
	var st syscall.Statfs_t
	dir := filepath.Dir(db.path)
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if free := st.Bavail * uint64(st.Bsize); free < MinFree {
		return fmt.Errorf("%s: %d bytes free, want %d: %w", dir, free, MinFree, ErrLowSpace)
	}
	return nil
}

func (db *DB) writeProbe(ctx context.Context) error {
	if err := db.statSpace(); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	err := InTx(ctx, db.Write, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO store_probe (id, written_at) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET written_at = excluded.written_at`, Millis(db.Now()))
		return err
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && !Unavailable(err) {
			// The write lock was not free within the bound.
			err = fmt.Errorf("%w (%w)", err, sqlite3.Error{Code: sqlite3.ErrBusy})
		}
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}
