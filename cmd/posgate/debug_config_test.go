package main

import (
	"os"
	"path/filepath"
	"testing"
)

// debug.pprof is off by default and can be turned on from the file or the
// environment.
func TestDebugPprofKey(t *testing.T) {
	cfg, err := loadConfig("", noenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Debug.Pprof {
		t.Fatal("debug.pprof is on by default")
	}
	path := filepath.Join(t.TempDir(), "p.toml")
	if err := os.WriteFile(path, []byte("[debug]\npprof = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = loadConfig(path, noenv); err != nil || !cfg.Debug.Pprof {
		t.Fatalf("from file: pprof=%v err=%v", cfg.Debug.Pprof, err)
	}
	env := func(k string) string {
		if k == "POSGATE_DEBUG_PPROF" {
			return "true"
		}
		return ""
	}
	if cfg, err = loadConfig("", env); err != nil || !cfg.Debug.Pprof {
		t.Fatalf("from env: pprof=%v err=%v", cfg.Debug.Pprof, err)
	}
}
