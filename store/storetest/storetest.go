// Package storetest opens a real, migrated SQLite store in a test's temp
// directory and closes it when the test ends. Never ":memory:": each
// pooled connection would get a database of its own.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
)

// Open returns a fresh store in t.TempDir().
func Open(t testing.TB) *store.DB {
	t.Helper()
	return OpenWith(t, store.Options{})
}

// OpenWith returns a fresh store in t.TempDir(), opened with opts.
func OpenWith(t testing.TB, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "posgate.db"), opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return db
}

// MasterKey returns a fresh master key file in t.TempDir().
func MasterKey(t testing.TB) *masterkey.Key {
	t.Helper()
	k, err := masterkey.LoadOrCreate(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatalf("master key: %v", err)
	}
	return k
}
