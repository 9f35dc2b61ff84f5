package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/posgate/posgate/backup"
)

// runBackup writes a one-file backup of the store and the master key. It
// runs beside a serving daemon: the store is copied in one read
// transaction (VACUUM INTO), so the copy is consistent.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs, getenv)
	out := fs.String("out", "", "backup `file` to write (made 0600); default posgate-backup-<UTC time>.tar.gz")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("backup: unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	if *out == "" {
		*out = "posgate-backup-" + time.Now().UTC().Format("20060102T150405Z") + ".tar.gz"
	}
	db, _, err := openStoreAndKey(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := backup.Create(ctx, backup.Source{DB: db.Write, MasterKeyPath: cfg.MasterKeyPath(), Version: version}, *out)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup written to %s (store %d bytes, schema %d, master key included: keep this file as safe as the key)\n",
		*out, m.Sizes[backup.DBName], m.SchemaVersion)
	return nil
}

// runRestore puts a backup into the configured data directory. It refuses
// while a daemon serves that directory, and over an existing store unless
// --force (which keeps the replaced files beside the new ones).
func runRestore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs, getenv)
	force := fs.Bool("force", false, "replace an existing store (the old files are kept, renamed *.pre-restore-<time>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("restore: want one argument, the backup file")
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	m, err := backup.Restore(ctx, fs.Arg(0), cfg.DataDir, backup.RestoreOptions{Force: *force})
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored backup of %s (posgate %s, schema %d) into %s\n",
		m.CreatedAt.Format(time.RFC3339), m.Version, m.SchemaVersion, cfg.DataDir)
	return nil
}
