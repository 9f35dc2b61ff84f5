//go:build linux

package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemo builds posgate and runs the whole demo: every step printed,
// the webhooks verified, the daemon stopped by its pid.
func TestDemo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "posgate")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../posgate").CombinedOutput(); err != nil {
		t.Fatalf("build posgate: %v\n%s", err, out)
	}
	var out bytes.Buffer
	if err := run(ctx, bin, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"started (pid", "payment completed", "issued and signed, IIC", "receipt printed on p1",
		"each signature verified", "deliveries delivered", "stopped with SIGTERM"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	t.Log("\n" + out.String())
}
