package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	// The driver registers itself as "sqlite3"; it needs cgo (see Makefile).
	_ "github.com/mattn/go-sqlite3"
)

// ErrSchemaTooNew is returned by Open when the database was written by a
// newer posgate than this one: running would risk misreading its tables.
var ErrSchemaTooNew = errors.New("database schema is newer than this posgate")

// DB is the open store: one writer connection and a pool of readers.
//
// SQLite allows one writer at a time; funnelling every write through a
// single connection turns lock contention into queueing in Go, where it is
// cheap, instead of SQLITE_BUSY retries. Readers see committed data (WAL)
// and never block the writer.
type DB struct {
	// Write is the only connection that writes. Every transaction begun on
	// it is BEGIN IMMEDIATE (see dsn).
	Write *sql.DB
	// Read is a pool of query-only connections for list and get routes.
	Read *sql.DB

	path  string
	probe probe // Writable's cached answer
	space probe // SpaceLeft's cached answer
	// group batches InTx calls into shared commits; nil with
	// Options.SerialCommit.
	group *committer
	// Now is the clock used for timestamps written by this package.
	Now func() time.Time
}

// Options tune Open. The zero value is what production uses.
type Options struct {
	// BusyTimeout is how long a connection waits on a lock. Default 5 s.
	BusyTimeout time.Duration
	// ReadConns is the size of the read pool. Default max(4, NumCPU)
	// plus one: a running relay holds one connection of the pool for its
	// claims (outbox.claimReader). At least 2.
	ReadConns int
	// ReadCacheKiB caps each read connection's page cache. Default 512
	// (SQLite's own default, which the writer keeps, is 2,000 KiB). In WAL
	// mode a reader drops its whole cache when it begins a transaction
	// after any commit, so a reader's cache only serves one transaction
	// while the tills write; a small one keeps each connection's memory
	// (which the C allocator does not give back) from growing to 2 MiB.
	ReadCacheKiB int

	// VFS names the SQLite VFS every connection uses; empty is SQLite's
	// default. For benchmarks: internal/slowvfs registers one whose syncs
	// take as long as an SD card's or eMMC's.
	VFS string

	// SerialCommit turns group commit off: each InTx is its own
	// transaction and fsync, as before group commit. For benchmarks.
	SerialCommit bool
	// MaxBatch caps how many transactions share one commit. Default 64.
	MaxBatch int
	// MaxBatchTime bounds how long the writer keeps running a batch's
	// transactions before it commits and leaves the rest to the next
	// batch: the bound is MaxBatchTime plus the previous commit's
	// duration, since a request cut off waits for this commit and then its
	// own. Default 10 ms.
	MaxBatchTime time.Duration
	// LowPriorityWait is how long a WithLowPriority transaction lets
	// other writes go first. Default 20 ms.
	LowPriorityWait time.Duration
}

// Open opens (creating if needed) the database at path, makes its directory
// 0700 and the file 0600, and applies pending migrations. It refuses a
// database whose schema is newer than the migrations embedded here.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.ReadConns == 0 {
		opts.ReadConns = max(4, runtime.NumCPU()) + 1
	}
	opts.ReadConns = max(opts.ReadConns, 2)
	if opts.ReadCacheKiB == 0 {
		opts.ReadCacheKiB = 512
	}
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite3", dsn(path, opts, false))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One writer: see DB.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	db := &DB{Write: w, path: path, Now: time.Now}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	r, err := sql.Open("sqlite3", dsn(path, opts, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open read pool %s: %w", path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	db.Read = r
	if !opts.SerialCommit {
		db.group = newCommitter(w, opts)
		writers.Store(w, db.group)
	}
	return db, nil
}

// dsn builds the mattn DSN. synchronous=FULL must be in the DSN, never a
// one-off PRAGMA: with WAL, mattn resets every new pooled connection to
// NORMAL, and a power cut then loses acknowledged rows
// (shared/research/powercut.md §4.3). _txlock=immediate makes Begin issue
// BEGIN IMMEDIATE, so a read-then-write transaction cannot fail with
// SQLITE_BUSY_SNAPSHOT, which busy_timeout does not retry.
func dsn(path string, opts Options, readOnly bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", fmt.Sprint(opts.BusyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "on")
	q.Set("_txlock", "immediate")
	if opts.VFS != "" {
		q.Set("vfs", opts.VFS)
	}
	if readOnly {
		q.Set("_cache_size", fmt.Sprint(-opts.ReadCacheKiB)) // negative: KiB, not pages
		q.Set("_query_only", "true")
		// A read transaction on the pool (a consistent snapshot) must not
		// ask for the write lock.
		q.Set("_txlock", "deferred")
	}
	return "file:" + path + "?" + q.Encode()
}

// prepareFile creates the data directory 0700 and the database file 0600
// before SQLite does, so the file never exists with looser permissions.
func prepareFile(path string) error {
	dir := filepath.Dir(path)
	if err := mkdirDurable(dir); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict data dir %s: %w", dir, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create database %s: %w", path, err)
	}
	// SQLite syncs the directory when it creates the WAL, which also
	// covers the database's own entry; syncing here as well costs one
	// fsync at start and does not depend on that detail.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("create database %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("restrict database %s: %w", path, err)
	}
	return nil
}

// mkdirDurable creates dir and any missing parents, 0700, and fsyncs the
// parent of each directory it created: a new directory's entry is durable
// only once its parent is synced, and a power cut after the first start
// of a fresh box would otherwise take the whole data directory (store and
// master key) with it.
func mkdirDurable(dir string) error {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// syncDir fsyncs a directory, making the entries in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Close closes both pools. A clean close checkpoints the WAL into the main
// file, so the next start opens fast.
func (db *DB) Close() error {
	var errs []error
	if db.group != nil {
		// Queued transactions still commit; new ones get ErrClosed.
		db.group.close()
		writers.Delete(db.Write)
	}
	if db.Read != nil {
		errs = append(errs, db.Read.Close())
	}
	if _, err := db.Write.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		errs = append(errs, fmt.Errorf("checkpoint: %w", err))
	}
	errs = append(errs, db.Write.Close())
	return errors.Join(errs...)
}

// Ping checks the store is writable: it begins and rolls back an
// immediate transaction, which takes the write lock. /healthz uses it.
func (db *DB) Ping(ctx context.Context) error {
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	return tx.Rollback()
}

// InTx runs fn in a write transaction on db and commits it. It rolls back
// when fn returns an error or panics (the panic is re-raised after the
// rollback), so nothing half-written stays behind.
//
// When db is the Write pool of an open DB, concurrent calls share one
// commit (group commit, see group.go): fn runs inside its own SAVEPOINT
// of a transaction that other callers' fns share, its error or panic
// rolls back only its own savepoint, and InTx returns only after the
// shared COMMIT (with synchronous=FULL, one fsync) returned. A failed
// commit fails every caller of the batch. One caller can fail others:
// when SQLite itself rolls the whole transaction back (its ctx cancelled
// in the middle of a write, an I/O error), the callers before it in the
// batch get ErrBatchAborted, nothing of theirs written. So fn must use tx only for
// Exec, Query and Prepare, never Commit or Rollback it, and should do no
// slow work (network, signing) inside: the whole batch waits for it.
func InTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) (err error) {
	if c, ok := writers.Load(db); ok {
		return c.(*committer).do(ctx, fn)
	}
	if q := queuedHook(ctx); q != nil {
		q()
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin tx: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit tx: %w", err)
	}
	return nil
}

// InTx is shorthand for InTx(ctx, db.Write, fn).
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return InTx(ctx, db.Write, fn)
}

// Millis is the storage form of a time: UTC Unix milliseconds.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis turns a stored millisecond timestamp back into a UTC time.
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
