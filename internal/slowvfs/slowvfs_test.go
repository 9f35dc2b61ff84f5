//go:build linux && cgo

package slowvfs_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/posgate/posgate/internal/slowvfs"
	"github.com/posgate/posgate/store"
)

// A store opened through the VFS works as on the default one, and each
// commit waits the delay once per sync.
func TestSlowCommit(t *testing.T) {
	const d = 30 * time.Millisecond
	if err := slowvfs.Register(d); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "data", "posgate.db")
	db, err := store.Open(ctx, path, store.Options{VFS: slowvfs.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if err := db.InTx(ctx, func(tx *sql.Tx) error { _, err := tx.ExecContext(ctx, q); return err }); err != nil {
			t.Fatal(err)
		}
	}
	exec("CREATE TABLE t (x INTEGER)")
	before := slowvfs.Syncs()
	t0 := time.Now()
	exec("INSERT INTO t VALUES (1)")
	el := time.Since(t0)
	if n := slowvfs.Syncs() - before; n < 1 {
		t.Fatalf("a commit synced %d times through the VFS", n)
	}
	if el < d {
		t.Fatalf("a commit took %v with a %v sync delay", el, d)
	}
	// 0 makes it fast again.
	if err := slowvfs.Register(0); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	for range 5 {
		exec("INSERT INTO t VALUES (2)")
	}
	if el := time.Since(t0); el >= 5*d {
		t.Fatalf("5 commits took %v with no delay", el)
	}
	var n int
	var ok string
	if err := db.Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 6 {
		t.Fatalf("count %d, %v", n, err)
	}
	if err := db.Read.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity %q, %v", ok, err)
	}
}

func TestBenchDelay(t *testing.T) {
	for _, c := range []struct {
		env  string
		want time.Duration
		bad  bool
	}{
		{"", 5 * time.Millisecond, false},
		{"20ms", 20 * time.Millisecond, false},
		{"0", 0, false},
		{"5", 0, true},
		{"-1ms", 0, true},
	} {
		t.Setenv(slowvfs.BenchDelayEnv, c.env)
		got, err := slowvfs.BenchDelay()
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("%s=%q: %v, %v; want %v (error %v)", slowvfs.BenchDelayEnv, c.env, got, err, c.want, c.bad)
		}
	}
}
