package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/store/storetest"
)

// A real SQLITE_FULL (the database may not grow: max_page_count) and
// SQLITE_READONLY, wrapped as callers wrap them, and the filesystem's
// ENOSPC and EIO are store faults; a constraint violation is not.
func TestUnavailable(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	if _, err := db.Write.Exec(`CREATE TABLE big (b BLOB)`); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := db.Write.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.Exec(fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	full := db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO big VALUES (zeroblob(100000))`)
		return fmt.Errorf("insert big: %w", err)
	})
	if full == nil || !store.Unavailable(full) {
		t.Fatalf("insert beyond max_page_count: %v, Unavailable false", full)
	}
	if _, err := db.Write.Exec(`PRAGMA max_page_count = 1073741823`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.Exec(`PRAGMA query_only = 1`); err != nil {
		t.Fatal(err)
	}
	ro := db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO big VALUES (x'00')`)
		return err
	})
	if !store.Unavailable(fmt.Errorf("create thing: %w", ro)) {
		t.Fatalf("write on a read-only store: %v, Unavailable false", ro)
	}
	if _, err := db.Write.Exec(`PRAGMA query_only = 0`); err != nil {
		t.Fatal(err)
	}
	_, uerr := db.Write.Exec(`INSERT INTO store_probe (id, written_at) VALUES (2, 0)`) // CHECK (id = 1)
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "write", Path: "/data/keys", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("seal: %w", syscall.EIO), true},
		{uerr, false},
		{errors.New("some bug"), false},
		{nil, false},
	} {
		if got := store.Unavailable(tc.err); got != tc.want {
			t.Errorf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Writable commits the probe row, and says why not when it cannot.
func TestWritable(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	if err := db.Writable(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Read.QueryRow(`SELECT count(*) FROM store_probe`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("probe rows %d (%v), want 1: the probe did not write", n, err)
	}
}
