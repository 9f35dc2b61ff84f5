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

	"github.com/posgate/posgate/store"
)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Force restores over an existing store. The files it replaces are
	// kept beside it, renamed with a ".pre-restore-<unix time>" suffix.
	Force bool
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// maxMember bounds what Restore will unpack for one member, so a crafted
// archive cannot fill the disk before its checksum is checked.
const maxMember = 64 << 30

// Restore unpacks the backup at archive into dataDir: it checks every
// member against the manifest's SHA-256, runs SQLite's integrity check on
// the store, and only then moves the store and the master key into place.
// It holds the data directory's lock throughout, so it refuses to run while
// a daemon serves that directory (ErrDaemonRunning), and a daemon cannot
// start while it runs.
func Restore(ctx context.Context, archive, dataDir string, opts RestoreOptions) (Manifest, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	lock, err := store.LockDir(dataDir)
	if errors.Is(err, store.ErrLocked) {
		return Manifest{}, ErrDaemonRunning
	} else if err != nil {
		return Manifest{}, err
	}
	defer lock.Unlock()

	dbPath := filepath.Join(dataDir, DBName)
	if _, err := os.Stat(dbPath); err == nil && !opts.Force {
		return Manifest{}, ErrStoreExists
	}

	work, err := os.MkdirTemp(dataDir, ".posgate-restore-*")
	if err != nil {
		return Manifest{}, fmt.Errorf("create restore work dir: %w", err)
	}
	defer os.RemoveAll(work)
	m, err := unpack(archive, work)
	if err != nil {
		return Manifest{}, err
	}
	if err := integrityCheck(ctx, filepath.Join(work, DBName)); err != nil {
		return Manifest{}, err
	}

	// Move what is there aside (never delete a store), then the restored
	// files into place, and make both renames durable.
	suffix := fmt.Sprintf(".pre-restore-%d", opts.Now().Unix())
	for _, name := range []string{DBName, DBName + "-wal", DBName + "-shm", MasterKeyName} {
		p := filepath.Join(dataDir, name)
		if _, err := os.Stat(p); err == nil {
			if err := os.Rename(p, p+suffix); err != nil {
				return Manifest{}, fmt.Errorf("move %s aside: %w", name, err)
			}
		}
	}
	for _, name := range []string{MasterKeyName, DBName} {
		if err := os.Rename(filepath.Join(work, name), filepath.Join(dataDir, name)); err != nil {
			return Manifest{}, fmt.Errorf("move restored %s into place: %w", name, err)
		}
	}
	if err := syncDir(dataDir); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// unpack reads the archive into dir and checks it against its manifest.
func unpack(archive, dir string) (Manifest, error) {
	f, err := os.Open(archive)
	if err != nil {
		return Manifest{}, fmt.Errorf("open backup: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	tr := tar.NewReader(gz)

	hdr, err := tr.Next()
	if err != nil || hdr.Name != ManifestName || hdr.Size > 1<<20 {
		return Manifest{}, fmt.Errorf("%w: first member is not %s", ErrCorrupt, ManifestName)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if m.Format != Format {
		return Manifest{}, fmt.Errorf("%w: manifest format %d, this posgate reads %d", ErrCorrupt, m.Format, Format)
	}
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		want, ok := m.SHA256[hdr.Name]
		if !ok || seen[hdr.Name] || hdr.Typeflag != tar.TypeReg || hdr.Size != m.Sizes[hdr.Name] || hdr.Size > maxMember {
			return Manifest{}, fmt.Errorf("%w: unexpected member %q", ErrCorrupt, hdr.Name)
		}
		seen[hdr.Name] = true
		if err := extract(tr, filepath.Join(dir, hdr.Name), hdr.Size, want); err != nil {
			return Manifest{}, err
		}
	}
	for _, name := range []string{DBName, MasterKeyName} {
		if !seen[name] {
			return Manifest{}, fmt.Errorf("%w: %s missing", ErrCorrupt, name)
		}
	}
	return m, nil
}

func extract(r io.Reader, path string, size int64, wantSum string) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("restore %s: %w", filepath.Base(path), err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(r, size))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, tar.ErrHeader) {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, filepath.Base(path), err)
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", filepath.Base(path), err)
	}
	if n != size || hex.EncodeToString(h.Sum(nil)) != wantSum {
		return fmt.Errorf("%w: %s does not match its checksum", ErrCorrupt, filepath.Base(path))
	}
	return nil
}

// integrityCheck opens the restored store read-only and runs SQLite's
// integrity check on it before it replaces anything.
func integrityCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		return fmt.Errorf("check restored store: %w", err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return fmt.Errorf("%w: integrity check: %v", ErrCorrupt, err)
	}
	if res != "ok" {
		return fmt.Errorf("%w: integrity check: %s", ErrCorrupt, res)
	}
	return nil
}
