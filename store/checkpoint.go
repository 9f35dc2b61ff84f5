package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpoints off the writer's path (issue 17).
//
// SQLite runs its automatic checkpoint inside the COMMIT that takes the
// WAL past wal_autocheckpoint pages, on the committing connection: the
// writer. The batch's callers, and every batch queued behind them, then
// wait while it reads the WAL, writes the pages into the database file
// and fsyncs both files. With a 5 ms fsync that was a 40–55 ms stall
// every 25 or so batches, the p99 of the whole benchmark.
//
// The committer instead has a connection of its own run PASSIVE
// checkpoints, at most one per checkpointInterval while there are
// commits, once checkpointFrames frames wait in the WAL (SQLite's own
// threshold: a store written a little is not checkpointed behind its
// owner's back, and explicit checkpoints such as webhook's TRUNCATE
// after sealing headers do not meet a busy checkpointer). A PASSIVE checkpoint takes no lock the writer needs: the
// writer goes on appending to the WAL meanwhile. Durability is SQLite's
// as before: the checkpointer's connection is synchronous=FULL (it syncs
// the WAL before copying and the database file after), and a WAL frame
// is durable from its commit, checkpointed or not.
//
// SQLite starts the WAL over from its beginning only when a write
// transaction begins with every frame checkpointed, which under steady
// load never follows a checkpoint that ran beside the writer: the WAL
// would grow without end. So once the WAL holds restartFrames frames,
// the writer, between two batches, checkpoints the few frames appended
// since the background checkpoint on its own connection, and its next
// transaction restarts the WAL: a short stall (those frames and the two
// fsyncs) where SQLite's automatic checkpoint stalled for all of them.
// The writer keeps an automatic checkpoint, raised to
// writerAutoCheckpoint pages, as a backstop should the checkpointer fail.
const (
	checkpointInterval   = 250 * time.Millisecond
	checkpointFrames     = 1000  // SQLite's default wal_autocheckpoint
	restartFrames        = 4000  // 16 MiB of WAL with 4 KiB pages
	writerAutoCheckpoint = 10000 // pages: 40 MiB
)

// checkpointer runs PASSIVE checkpoints on its own connection.
type checkpointer struct {
	db       *sql.DB
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	// restart asks the writer to catch up and restart the WAL once the
	// WAL holds restartAt frames (restartFrames; tests lower it).
	restart   atomic.Bool
	restartAt int
	// shm is the WAL index, read for how many frames wait; checkpointAt
	// is checkpointFrames (tests lower it).
	shm          string
	checkpointAt int

	// Counters, for tests.
	runs     atomic.Int64
	failed   atomic.Int64
	restarts atomic.Int64
	lastLog  atomic.Int64 // frames in the WAL at the last checkpoint
}

// newCheckpointer opens a connection to the file writer writes and
// starts the checkpointer on it; nil, nil for a database without a file.
func newCheckpointer(writer *sql.DB, opts Options) (*checkpointer, error) {
	var path string
	rows, err := writer.Query("PRAGMA database_list")
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	for rows.Next() {
		var seq int
		var name, file string
		if err := rows.Scan(&seq, &name, &file); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list databases: %w", err)
		}
		if name == "main" {
			path = file
		}
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	if path == "" {
		return nil, nil
	}
	db, err := sql.Open("sqlite3", dsn(path, opts, false))
	if err != nil {
		return nil, fmt.Errorf("open checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open checkpointer: %w", err)
	}
	// The writer's own automatic checkpoint becomes the backstop.
	if _, err := writer.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", writerAutoCheckpoint)); err != nil {
		db.Close()
		return nil, fmt.Errorf("raise the writer's autocheckpoint: %w", err)
	}
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), restartAt: restartFrames,
		shm: path + "-shm", checkpointAt: checkpointFrames}
	go c.run()
	return c, nil
}

// committed tells the checkpointer a batch committed.
func (c *checkpointer) committed() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		}
		if n, ok := c.waiting(); ok && n < c.checkpointAt {
			continue
		}
		if err := c.checkpoint(); err != nil {
			// The writer's backstop checkpoint still bounds the WAL; the
			// next commit tries again.
			c.failed.Add(1)
		}
		select {
		case <-c.stop:
			return
		case <-time.After(checkpointInterval):
		}
	}
}

// waiting returns how many WAL frames are not checkpointed yet, read
// from the WAL index (https://www.sqlite.org/walformat.html §2.1: the
// header's mxFrame at byte 16, the checkpoint info's nBackfill at byte
// 96, native byte order); ok false when the index cannot be read or is
// not the version described there.
func (c *checkpointer) waiting() (n int, ok bool) {
	f, err := os.Open(c.shm)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var b [100]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0, false
	}
	if binary.NativeEndian.Uint32(b[0:]) != 3007000 { // iVersion
		return 0, false
	}
	mx, backfilled := binary.NativeEndian.Uint32(b[16:]), binary.NativeEndian.Uint32(b[96:])
	if backfilled > mx {
		return 0, true
	}
	return int(mx - backfilled), true
}

// checkpoint runs one PASSIVE checkpoint. A checkpoint already running
// elsewhere (the writer's backstop, Close) makes it busy, which is fine.
func (c *checkpointer) checkpoint() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var busy, log, done int
	if err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	c.runs.Add(1)
	c.lastLog.Store(int64(log))
	if log >= c.restartAt {
		c.restart.Store(true)
	}
	return nil
}

// catchUp runs on the writer goroutine between batches, with writer the
// writer's pool: when the checkpointer asked, it checkpoints what the
// background checkpoint left, so the next transaction restarts the WAL.
// A failure leaves the work to the next background checkpoint.
func (c *checkpointer) catchUp(writer *sql.DB) {
	if !c.restart.Swap(false) {
		return
	}
	var busy, log, done int
	if err := writer.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
		c.failed.Add(1)
		return
	}
	if busy != 0 || done < log {
		c.restart.Store(true) // a reader or the checkpointer was in the way
		return
	}
	c.restarts.Add(1)
}

// close stops the checkpointer and closes its connection. DB.Close may
// run more than once, and so may this.
func (c *checkpointer) close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
	return c.db.Close()
}
