package store_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/store/storetest"
)

// Every pooled connection, writer and readers alike, must run with
// synchronous=FULL: mattn resets new WAL connections to NORMAL unless the
// DSN says otherwise, and NORMAL loses acknowledged rows on a power cut.
func TestEveryConnectionIsFull(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	check := func(pool *sql.DB, name string, n int) {
		conns := make([]*sql.Conn, n)
		for i := range conns {
			c, err := pool.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns[i] = c
		}
		for i, c := range conns {
			var sync int
			if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
				t.Fatal(err)
			}
			if sync != 2 {
				t.Errorf("%s conn %d: synchronous=%d, want 2 (FULL)", name, i, sync)
			}
			var mode string
			if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if mode != "wal" {
				t.Errorf("%s conn %d: journal_mode=%s, want wal", name, i, mode)
			}
			var fk int
			if err := c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
				t.Fatal(err)
			}
			if fk != 1 {
				t.Errorf("%s conn %d: foreign_keys=%d, want 1", name, i, fk)
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
	check(db.Write, "write", 1)
	check(db.Read, "read", 4)
}

// Each read connection's page cache is capped at Options.ReadCacheKiB
// (default 512 KiB); the writer keeps SQLite's default 2,000 KiB.
func TestPageCacheSizes(t *testing.T) {
	ctx := context.Background()
	check := func(pool *sql.DB, name string, n, want int) {
		t.Helper()
		conns := make([]*sql.Conn, n)
		for i := range conns {
			c, err := pool.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			conns[i] = c
		}
		for i, c := range conns {
			var size int
			if err := c.QueryRowContext(ctx, "PRAGMA cache_size").Scan(&size); err != nil {
				t.Fatal(err)
			}
			if size != want {
				t.Errorf("%s conn %d: cache_size=%d, want %d", name, i, size, want)
			}
		}
	}
	db := storetest.Open(t)
	check(db.Write, "write", 1, -2000)
	check(db.Read, "read", 4, -512)

	db2, err := store.Open(ctx, filepath.Join(t.TempDir(), "posgate.db"), store.Options{ReadCacheKiB: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	check(db2.Read, "read (ReadCacheKiB 64)", 2, -64)
}

func TestReadPoolRefusesWrites(t *testing.T) {
	db := storetest.Open(t)
	_, err := db.Read.Exec("CREATE TABLE nope (x INTEGER)")
	if err == nil {
		t.Fatal("read pool accepted a write")
	}
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "posgate.db")
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "posgate.db")

	t.Run("OK", func(t *testing.T) {
		db, err := store.Open(ctx, path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		v, err := db.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := v, len(store.Migrations()); got != want {
			t.Fatalf("version=%d, want %d", got, want)
		}
		var applied1 int64
		if err := db.Read.QueryRow("SELECT applied_at FROM schema_migrations WHERE version = 1").Scan(&applied1); err != nil {
			t.Fatal(err)
		}
		db.Close()

		// Reopening applies nothing again: the first migration keeps its
		// original timestamp and there is one row per migration.
		db, err = store.Open(ctx, path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		var again int64
		if err := db.Read.QueryRow("SELECT COUNT(*), (SELECT applied_at FROM schema_migrations WHERE version = 1) FROM schema_migrations").Scan(&n, &again); err != nil {
			t.Fatal(err)
		}
		if n != len(store.Migrations()) || again != applied1 {
			t.Fatalf("after reopen: %d rows (want %d), applied_at %d (want %d)", n, len(store.Migrations()), again, applied1)
		}
	})

	t.Run("ErrSchemaTooNew", func(t *testing.T) {
		db, err := store.Open(ctx, path, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Write.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err = store.Open(ctx, path, store.Options{})
		if !errors.Is(err, store.ErrSchemaTooNew) {
			t.Fatalf("err=%v, want ErrSchemaTooNew", err)
		}
	})
}

func TestInTx(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	if _, err := db.Write.Exec("CREATE TABLE t (x INTEGER) STRICT"); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := db.Read.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("OK", func(t *testing.T) {
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec("INSERT INTO t VALUES (1)")
			return err
		})
		if err != nil || count() != 1 {
			t.Fatalf("err=%v count=%d, want nil 1", err, count())
		}
	})
	t.Run("ErrRollsBack", func(t *testing.T) {
		boom := errors.New("boom")
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec("INSERT INTO t VALUES (2)"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) || count() != 1 {
			t.Fatalf("err=%v count=%d, want boom 1", err, count())
		}
	})
	t.Run("PanicRollsBack", func(t *testing.T) {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("panic was swallowed")
				}
			}()
			_ = db.InTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.Exec("INSERT INTO t VALUES (3)"); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		if count() != 1 {
			t.Fatalf("count=%d after panic, want 1", count())
		}
		// The single writer connection must be usable again.
		if err := db.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// Concurrent writers queue on the single writer connection instead of
// failing with SQLITE_BUSY.
func TestConcurrentWriters(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	if _, err := db.Write.Exec("CREATE TABLE c (x INTEGER) STRICT"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			errs <- db.InTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.Exec("INSERT INTO c VALUES (?)", i)
				return err
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.Read.QueryRow("SELECT COUNT(*) FROM c").Scan(&n); err != nil || n != 200 {
		t.Fatalf("n=%d err=%v, want 200", n, err)
	}
}
