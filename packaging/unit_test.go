package packaging_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifyUnit runs systemd-analyze verify on a copy of unit whose ExecStart
// points at a stand-in executable (verify insists that it exists), and
// returns what it printed.
func verifyUnit(t *testing.T, unit string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "posgate")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit = strings.ReplaceAll(unit, "/usr/bin/posgate", bin)
	path := filepath.Join(dir, "posgate.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "systemd-analyze", "verify", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// The unit passes systemd-analyze verify with nothing to say. verify exits
// 0 even for a key it ignores, so any output fails the test; a broken copy
// shows that the check sees such keys.
func TestUnitFileVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze is missing; .ci/run installs systemd")
		}
		t.Skip("systemd-analyze not installed")
	}
	raw, err := os.ReadFile("posgate.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	if out, err := verifyUnit(t, unit); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	broken := strings.Replace(unit, "ProtectSystem=strict", "ProtectSystem=bogus", 1)
	if out, _ := verifyUnit(t, broken); !strings.Contains(out, "ProtectSystem") && !strings.Contains(out, "protect system") {
		t.Fatalf("a broken unit verified silently: %q", out)
	}
}

// The hardening the shop box relies on is in the unit: its own user, a
// read-only system but for the data directory, and serial/USB devices only.
func TestUnitIsHardened(t *testing.T) {
	raw, err := os.ReadFile("posgate.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"User=posgate", "SupplementaryGroups=dialout lp", "ProtectSystem=strict",
		"ReadWritePaths=/var/lib/posgate", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
		"DevicePolicy=closed", "DeviceAllow=char-ttyUSB rw", "PrivateTmp=yes",
		"ExecStart=/usr/bin/posgate serve --config /etc/posgate/posgate.toml",
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("unit lacks %q", strings.TrimSpace(want))
		}
	}
}
