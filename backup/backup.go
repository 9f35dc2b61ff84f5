package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Names of the members of a backup archive, and of the files they restore to.
const (
	ManifestName  = "manifest.json"
	DBName        = "posgate.db"
	MasterKeyName = "master.key"
)

// Format is the manifest's format version; Restore refuses any other.
const Format = 1

var (
	// ErrDaemonRunning is returned by Restore when a daemon holds the data
	// directory's lock.
	ErrDaemonRunning = errors.New("backup: a posgate daemon is running on this data directory; stop it first")
	// ErrStoreExists is returned by Restore when the data directory already
	// has a store and Force is not set.
	ErrStoreExists = errors.New("backup: the data directory already has a store; restore into an empty one or use --force")
	// ErrCorrupt is returned by Restore for an archive that is not a
	// posgate backup, is truncated, or whose checksums do not match.
	ErrCorrupt = errors.New("backup: archive is damaged or not a posgate backup")
)

// Manifest describes a backup. It is the archive's first member.
type Manifest struct {
	Format        int               `json:"format"`
	CreatedAt     time.Time         `json:"created_at"`
	Version       string            `json:"posgate_version"`
	SchemaVersion int               `json:"schema_version"`
	SHA256        map[string]string `json:"sha256"`
	Sizes         map[string]int64  `json:"sizes"`
}

// Source is what Create copies.
type Source struct {
	// DB is a connection to the live store. VACUUM INTO runs on it as one
	// read transaction, so the copy is consistent while writers go on.
	DB *sql.DB
	// MasterKeyPath is the master key file that opens the store's sealed
	// secrets; a backup without it could not be used.
	MasterKeyPath string
	// Version is posgate's version, recorded in the manifest.
	Version string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Create writes a backup of src to out, a new file made 0600. It writes to
// a temporary file beside out and renames it into place after an fsync, so
// out is either absent or a whole backup. It returns the manifest written.
func Create(ctx context.Context, src Source, out string) (Manifest, error) {
	if src.Now == nil {
		src.Now = time.Now
	}
	dir := filepath.Dir(out)
	work, err := os.MkdirTemp(dir, ".posgate-backup-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("create backup work dir: %w", err)
	}
	defer os.RemoveAll(work)
	if err := os.Chmod(work, 0o700); err != nil {
		return Manifest{}, fmt.Errorf("restrict backup work dir: %w", err)
	}

	// 1. A consistent copy of the store, taken in one read transaction.
	dbCopy := filepath.Join(work, DBName)
	if _, err := src.DB.ExecContext(ctx, "VACUUM INTO ?", dbCopy); err != nil {
		return Manifest{}, fmt.Errorf("copy store: %w", err)
	}
	var schema int
	if err := src.DB.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&schema); err != nil {
		return Manifest{}, fmt.Errorf("read schema version: %w", err)
	}
	key, err := os.ReadFile(src.MasterKeyPath)
	if err != nil {
		return Manifest{}, fmt.Errorf("read master key: %w", err)
	}

	m := Manifest{
		Format: Format, CreatedAt: src.Now().UTC().Truncate(time.Second), Version: src.Version,
		SchemaVersion: schema, SHA256: map[string]string{}, Sizes: map[string]int64{},
	}
	dbSum, dbSize, err := fileSum(dbCopy)
	if err != nil {
		return Manifest{}, err
	}
	m.SHA256[DBName], m.Sizes[DBName] = dbSum, dbSize
	keySum := sha256.Sum256(key)
	m.SHA256[MasterKeyName], m.Sizes[MasterKeyName] = hex.EncodeToString(keySum[:]), int64(len(key))

	// 2. The archive: manifest, store, key; 0600 from its first byte.
	tmp := filepath.Join(work, "backup.tar.gz")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Manifest{}, fmt.Errorf("create backup file: %w", err)
	}
	if err := writeArchive(f, m, dbCopy, key); err != nil {
		f.Close()
		return Manifest{}, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return Manifest{}, fmt.Errorf("sync backup file: %w", err)
	}
	if err := f.Close(); err != nil {
		return Manifest{}, fmt.Errorf("close backup file: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return Manifest{}, fmt.Errorf("move backup into place: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

func writeArchive(w io.Writer, m Manifest, dbPath string, key []byte) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	man, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if err := addBytes(tw, ManifestName, man, m.CreatedAt); err != nil {
		return err
	}
	db, err := os.Open(dbPath)
	if err != nil {
		return fmt.Errorf("open store copy: %w", err)
	}
	defer db.Close()
	if err := tw.WriteHeader(&tar.Header{Name: DBName, Mode: 0o600, Size: m.Sizes[DBName], ModTime: m.CreatedAt, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if _, err := io.Copy(tw, db); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if err := addBytes(tw, MasterKeyName, key, m.CreatedAt); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}

func addBytes(tw *tar.Writer, name string, b []byte, t time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), ModTime: t, Typeflag: tar.TypeReg}); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if _, err := tw.Write(b); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}

func fileSum(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", filepath.Base(path), err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// syncDir makes a rename or a new entry in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
