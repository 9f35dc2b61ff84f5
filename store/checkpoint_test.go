package store_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/store"
)

// The WAL is checkpointed by the committer's own connection, not by the
// writer inside a COMMIT: the writer's automatic checkpoint is raised to
// a backstop far above what the test writes, yet the pages reach the
// database file, and what was committed is all there after a reopen.
func TestCheckpointOffTheWriter(t *testing.T) {
	path := t.TempDir() + "/posgate.db"
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store.SetCheckpointFrames(db, 200)
	createTable(t, db, "c")
	if _, err := db.Write.Exec("ALTER TABLE c ADD COLUMN v TEXT"); err != nil {
		t.Fatal(err)
	}
	var auto int
	if err := db.Write.QueryRow("PRAGMA wal_autocheckpoint").Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto < 5000 {
		t.Fatalf("writer's wal_autocheckpoint=%d, want the raised backstop", auto)
	}
	before := fileSize(t, path)
	// About 600 pages of WAL, far below the writer's backstop, from
	// concurrent callers so batches form.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				err := db.InTx(context.Background(), func(tx *sql.Tx) error {
					_, err := tx.Exec("INSERT INTO c (x, v) VALUES (?, ?)", g*1000+i, strings.Repeat("x", 6000))
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runs, failed := store.Checkpoints(db)
		if failed != 0 {
			t.Fatalf("%d background checkpoints failed", failed)
		}
		// The checkpoint that follows the last commit has copied its pages.
		if runs > 0 && fileSize(t, path) > before+400*4096 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d → %d bytes after %d background checkpoints: the WAL was not checkpointed", before, fileSize(t, path), runs)
		}
		// Each commit wakes the checkpointer; it runs at most every 250 ms.
		if err := db.InTx(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec("UPDATE c SET v = 'y' WHERE x = 0")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.Read.QueryRow("SELECT count(*) FROM c WHERE length(v) = 6000 OR v = 'y'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 400 {
		t.Fatalf("%d rows after reopening, want 400", n)
	}
}

// The writer keeps statement journals (one per caller's savepoint) in
// memory.
func TestWriterTempStoreInMemory(t *testing.T) {
	db := openWith(t, store.Options{})
	var ts int
	if err := db.Write.QueryRow("PRAGMA temp_store").Scan(&ts); err != nil {
		t.Fatal(err)
	}
	if ts != 2 {
		t.Fatalf("writer temp_store=%d, want 2 (MEMORY)", ts)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Under steady writes the WAL still starts over: once it holds the
// restart threshold, the writer checkpoints what the background
// checkpoint left between two batches, and the WAL shrinks back instead
// of growing without end.
func TestWALRestartsUnderSteadyWrites(t *testing.T) {
	db := openWith(t, store.Options{})
	store.SetRestartFrames(db, 100)
	store.SetCheckpointFrames(db, 20)
	createTable(t, db, "w")
	if _, err := db.Write.Exec("ALTER TABLE w ADD COLUMN v TEXT"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				err := db.InTx(context.Background(), func(tx *sql.Tx) error {
					_, err := tx.Exec("INSERT INTO w (x, v) VALUES (?, ?)", g*1_000_000+i, strings.Repeat("w", 3000))
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	var peak int64
	for {
		restarts, last := store.WALRestarts(db)
		peak = max(peak, last)
		// A checkpoint after a restart sees a WAL below its peak: the
		// frame count only ever grows until the WAL starts over. (Not
		// "far below": under load the frames appended between a restart
		// and the next checkpoint are thousands too.)
		if restarts >= 2 && peak >= 100 && last < peak {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s of writes: %d WAL restarts, last checkpoint saw %d frames (peak %d)", restarts, last, peak)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Closing a store twice is harmless, checkpointer included.
func TestCloseTwice(t *testing.T) {
	db, err := store.Open(context.Background(), t.TempDir()+"/posgate.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
}

// The checkpointer reads how many frames wait in the WAL from the WAL
// index, and leaves a WAL below its threshold alone: a store written a
// little is not checkpointed behind its owner's back (api's
// TestRefusedRequestsWriteNothing compares file sizes; webhook's
// TRUNCATE checkpoint must not find the checkpoint lock taken).
func TestCheckpointWaitsForFrames(t *testing.T) {
	path := t.TempDir() + "/posgate.db"
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Write.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	if n, ok := store.WALWaiting(db); !ok || n != 0 {
		t.Fatalf("after a TRUNCATE checkpoint: %d frames waiting (read %v), want 0", n, ok)
	}
	createTable(t, db, "f")
	for i := range 20 {
		if err := db.InTx(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec("INSERT INTO f VALUES (?)", i)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Each commit appends at least one frame; the table's creation one
	// more.
	n, ok := store.WALWaiting(db)
	if !ok || n < 21 || n > 200 {
		t.Fatalf("after 21 commits: %d frames waiting (read %v), want 21…200", n, ok)
	}
	size := fileSize(t, path)
	time.Sleep(600 * time.Millisecond) // past two checkpoint intervals
	if runs, _ := store.Checkpoints(db); runs != 0 || fileSize(t, path) != size {
		t.Fatalf("%d background checkpoints of %d frames, database %d → %d bytes; want none", runs, n, size, fileSize(t, path))
	}
}
