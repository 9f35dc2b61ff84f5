//go:build linux

package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeQuickStart runs the README's quick start as written: what
// `make run` runs (the Makefile's command, on configs/dev.toml with only
// listen and data_dir moved to a free port and a temp dir), then every
// curl line it prints, with sh, as printed.
func TestReadmeQuickStart(t *testing.T) {
	readme, _ := os.ReadFile("../../README.md")
	mk, _ := os.ReadFile("../../Makefile")
	if !strings.Contains(string(readme), "make run") ||
		!strings.Contains(string(mk), "./bin/posgate serve --dev --simulate --config data/posgate.toml") {
		t.Fatal("README's make run or the Makefile's run target changed; update this test")
	}
	dev, err := os.ReadFile("../../configs/dev.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgText := regexp.MustCompile(`(?m)^listen\s*=.*$`).ReplaceAllString(string(dev), `listen = "127.0.0.1:0"`)
	cfgText = regexp.MustCompile(`(?m)^data_dir\s*=.*$`).ReplaceAllString(cfgText, `data_dir = "`+filepath.Join(dir, "data")+`"`)
	cfg := filepath.Join(dir, "posgate.toml")
	if err := os.WriteFile(cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--dev", "--simulate", "--config", cfg}, noenv, stdout, io.Discard)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); !listenLine.MatchString(stdout.String()) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	out := stdout.String()
	curls := regexp.MustCompile(`(?m)^\s*(Try|Invoice): (curl .*)$`).FindAllStringSubmatch(out, -1)
	if !strings.Contains(out, "X-Api-Key: ") || len(curls) != 2 {
		t.Fatalf("make run printed no key with its two curl lines:\n%s", out)
	}
	want := map[string]string{"Try": `"role":"admin"`, "Invoice": `"fiscal_signature"`}
	for _, c := range curls {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := exec.CommandContext(ctx, "sh", "-ec", c[2]).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(got), want[c[1]]) {
			t.Errorf("%s line %q: %v\n%s", c[1], c[2], err, got)
		}
	}
}

// The curl `keys create` suggests answers for the key's role: a pos key
// is not sent to an admin route (which would answer 403).
func TestKeysCreateCurlWorksForEachRole(t *testing.T) {
	cfg := writeConfig(t, "")
	d := startDaemon(t, cfg)
	for _, role := range []string{"pos", "admin"} {
		out, err := cli(t, "keys", "create", "--config", cfg, "--label", "k "+role, "--role", role)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`Try: (curl .*) http://\S+?(/v1/\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no curl printed:\n%s", out)
		}
		// The printed address is the configured one (port 0 here): run the
		// line against the daemon's bound address.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := exec.CommandContext(ctx, "sh", "-ec", m[1]+" -w ' %{http_code}' "+d.url+m[2]).CombinedOutput()
		cancel()
		if err != nil || !strings.HasSuffix(string(got), " 200") {
			t.Errorf("%s key's suggested curl: %v %s", role, err, got)
		}
	}
}
