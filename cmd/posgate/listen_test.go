package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A non-loopback listen address is refused at start unless
// listen_allow_remote says so, from the file or the environment.
func TestListenRemoteNeedsConsent(t *testing.T) {
	for _, tc := range []struct {
		listen string
		allow  string // "", "file" or "env"
		ok     bool
	}{
		{"127.0.0.1:8420", "", true},
		{"127.8.9.10:8420", "", true},
		{"[::1]:8420", "", true},
		{"localhost:8420", "", true},
		{"[::ffff:127.0.0.1]:8420", "", true},
		{"0.0.0.0:8420", "", false},
		{"[::]:8420", "", false},
		{"192.168.1.20:8420", "", false},
		{"[fe80::1%eth0]:8420", "", false},
		{"posgate.lan:8420", "", false},
		{"0.0.0.0:8420", "file", true},
		{"[::]:8420", "env", true},
		{"192.168.1.20:8420", "file", true},
	} {
		t.Run(tc.listen+"/"+tc.allow, func(t *testing.T) {
			file := "listen = \"" + tc.listen + "\"\n"
			if tc.allow == "file" {
				file += "listen_allow_remote = true\n"
			}
			path := filepath.Join(t.TempDir(), "c.toml")
			if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string {
				if tc.allow == "env" && k == "POSGATE_LISTEN_ALLOW_REMOTE" {
					return "true"
				}
				return ""
			}
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"serve", "--config", path, "--print-config"}, getenv, &out, &errb)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Key != "listen" || !strings.Contains(err.Error(), "listen_allow_remote") {
				t.Fatalf("err=%v, want a listen ConfigError naming listen_allow_remote", err)
			}
		})
	}
}

// With consent, every start warns that the API is reachable from other
// machines. The test binds the wildcard address on a free port for a
// moment and sends no traffic at all.
func TestListenRemoteWarnsAtStart(t *testing.T) {
	cfg := writeConfig(t, "listen_allow_remote = true\n")
	b, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(b, []byte(`listen = "127.0.0.1:0"`), []byte(`listen = "0.0.0.0:0"`), 1), 0o600)
	for range 2 {
		d := startDaemon(t, cfg)
		d.stop(t)
		if !strings.Contains(d.stderr.String(), "api listening beyond loopback") {
			t.Fatalf("no warning at start:\n%s", d.stderr.String())
		}
	}
	// Loopback starts do not warn.
	d := startDaemon(t, writeConfig(t, ""))
	time.Sleep(10 * time.Millisecond)
	d.stop(t)
	if strings.Contains(d.stderr.String(), "beyond loopback") {
		t.Fatal("a loopback start warned")
	}
}
