package backup_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/backup"
	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
)

// openDataDir opens a store and a master key in a fresh data directory.
func openDataDir(t *testing.T) (string, *store.DB) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	db, err := store.Open(context.Background(), filepath.Join(dir, backup.DBName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := masterkey.LoadOrCreate(filepath.Join(dir, backup.MasterKeyName)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.Exec(`CREATE TABLE bk_test (n INTEGER PRIMARY KEY, pad TEXT NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	return dir, db
}

func count(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.Read.QueryRow("SELECT count(*) FROM bk_test").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A backup taken while a writer commits is one consistent snapshot: the
// restored store passes the integrity check, holds a whole number of the
// writer's transactions (each inserts two rows), and opens with the same
// master key.
func TestBackupWhileWritingRestoresConsistent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, db := openDataDir(t)

	var wrote atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Write.Exec(`INSERT INTO bk_test (pad) VALUES ('a'), ('b')`); err != nil {
				t.Error(err)
				return
			}
			wrote.Add(2)
		}
	}()
	for wrote.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	m, err := backup.Create(ctx, backup.Source{DB: db.Write, MasterKeyPath: filepath.Join(dir, backup.MasterKeyName), Version: "test"}, out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode: %v %v, want 0600", fi.Mode(), err)
	}
	if m.SchemaVersion == 0 || m.SHA256[backup.DBName] == "" {
		t.Fatalf("manifest %+v", m)
	}

	target := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(ctx, out, target, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	rdb, err := store.Open(ctx, filepath.Join(target, backup.DBName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	n := count(t, rdb)
	if n == 0 || n%2 != 0 || int64(n) > wrote.Load() {
		t.Fatalf("restored %d rows of %d written: not one consistent snapshot", n, wrote.Load())
	}
	orig, _ := os.ReadFile(filepath.Join(dir, backup.MasterKeyName))
	got, _ := os.ReadFile(filepath.Join(target, backup.MasterKeyName))
	if !bytes.Equal(orig, got) {
		t.Fatal("restored master key differs")
	}
	if fi, _ := os.Stat(filepath.Join(target, backup.MasterKeyName)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored master key mode %v", fi.Mode())
	}
}

func TestRestoreRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, db := openDataDir(t)
	if _, err := db.Write.Exec(`INSERT INTO bk_test (pad) VALUES ('x')`); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b.tar.gz")
	if _, err := backup.Create(ctx, backup.Source{DB: db.Write, MasterKeyPath: filepath.Join(dir, backup.MasterKeyName)}, out); err != nil {
		t.Fatal(err)
	}

	t.Run("ErrDaemonRunning", func(t *testing.T) {
		target := t.TempDir()
		lock, err := store.LockDir(target)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Unlock()
		if _, err := backup.Restore(ctx, out, target, backup.RestoreOptions{Force: true}); !errors.Is(err, backup.ErrDaemonRunning) {
			t.Fatalf("restore under a held lock: %v, want ErrDaemonRunning", err)
		}
		if _, err := os.Stat(filepath.Join(target, backup.DBName)); err == nil {
			t.Fatal("restore wrote a store under a held lock")
		}
	})
	t.Run("ErrStoreExists", func(t *testing.T) {
		db.Close()
		if _, err := backup.Restore(ctx, out, dir, backup.RestoreOptions{}); !errors.Is(err, backup.ErrStoreExists) {
			t.Fatalf("restore over a store: %v, want ErrStoreExists", err)
		}
	})
	t.Run("ForceKeepsOldFiles", func(t *testing.T) {
		target := t.TempDir()
		if err := os.WriteFile(filepath.Join(target, backup.DBName), []byte("old store"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := backup.Restore(ctx, out, target, backup.RestoreOptions{Force: true, Now: func() time.Time { return time.Unix(42, 0) }}); err != nil {
			t.Fatal(err)
		}
		old, err := os.ReadFile(filepath.Join(target, backup.DBName+".pre-restore-42"))
		if err != nil || string(old) != "old store" {
			t.Fatalf("old store not kept aside: %q %v", old, err)
		}
	})
	t.Run("ErrCorrupt", func(t *testing.T) {
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		// A store whose bytes were changed after the manifest was written.
		tampered := rewrite(t, raw, func(name string, b []byte) []byte {
			if name == backup.DBName {
				b = append([]byte(nil), b...)
				b[len(b)/2] ^= 0xff
			}
			return b
		})
		for name, data := range map[string][]byte{"tampered": tampered, "truncated": raw[:len(raw)/2], "not gzip": []byte("hello")} {
			p := filepath.Join(t.TempDir(), "bad.tar.gz")
			os.WriteFile(p, data, 0o600)
			target := t.TempDir()
			if _, err := backup.Restore(ctx, p, target, backup.RestoreOptions{}); !errors.Is(err, backup.ErrCorrupt) {
				t.Errorf("%s: %v, want ErrCorrupt", name, err)
			}
			if _, err := os.Stat(filepath.Join(target, backup.DBName)); err == nil {
				t.Errorf("%s: a store was written from a bad archive", name)
			}
		}
	})
}

// rewrite re-packs an archive, passing each member's bytes through f.
func rewrite(t *testing.T, raw []byte, f func(string, []byte) []byte) []byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		b = f(h.Name, b)
		h.Size = int64(len(b))
		tw.WriteHeader(h)
		tw.Write(b)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}
