//go:build linux

package powerfs_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posgate/posgate/internal/powerfs"
)

// A fresh box: posgate creates a missing data directory (two levels deep)
// on first use. Once `keys create` has printed its key, a power cut that
// drops every unsynced write must leave the directory, the master key and
// the key behind: the parent of every directory posgate made is synced.
func TestFreshDataDirSurvivesCut(t *testing.T) {
	bin := build(t, "github.com/posgate/posgate/cmd/posgate")
	fsys, mnt := mount(t)
	dataDir := filepath.Join(mnt, "var", "posgate")
	cfg := filepath.Join(t.TempDir(), "posgate.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir = %q\n", dataDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runCLI(t, bin, "keys", "create", "--json", "--label", "first", "--role", "admin", "--config", cfg)
	if !strings.Contains(string(out), `"client_secret"`) {
		t.Fatalf("keys create printed %s", out)
	}
	reboot(t, fsys, mnt, powerfs.LossDrop, rand.New(rand.NewPCG(1, 2)))
	for _, p := range []string{dataDir, filepath.Join(dataDir, "master.key"), filepath.Join(dataDir, "posgate.db")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("after the cut: %v", err)
		}
	}
	list := runCLI(t, bin, "keys", "list", "--json", "--config", cfg)
	if !strings.Contains(string(list), `"label":"first"`) {
		t.Fatalf("after the cut the key is gone: %s", list)
	}
}
