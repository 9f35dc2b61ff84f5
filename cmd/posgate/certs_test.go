package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCertsCLI(t *testing.T) {
	// Its own config (not main_test.go's helper): data in a temp dir.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "posgate.toml")
	if err := os.WriteFile(cfg, []byte("data_dir = "+strconv.Quote(filepath.Join(dir, "data"))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noenv := func(string) string { return "" }
	p12 := filepath.Join("..", "..", "fiscal", "testdata", "openssl3-aes.p12")
	ctx := context.Background()
	env := func(k string) string {
		if k == "POSGATE_CERT_PASSWORD" {
			return "posgate-test"
		}
		return ""
	}
	certs := func(getenv func(string) string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := runCerts(ctx, append(args, "--config", cfg), getenv, &out, &errb)
		return out.String(), err
	}
	if _, err := certs(noenv, "import", "--p12", p12); err == nil || !strings.Contains(err.Error(), "password is incorrect") {
		t.Fatalf("import without password: %v, want the password error", err)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("posgate-test\n"), 0o600)
	out, err := certs(noenv, "import", "--p12", p12, "--password-file", pwFile, "--json")
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	var c struct {
		ID     string `json:"id"`
		TIN    string `json:"tin"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.TIN != "12345678" || c.Status != "active" {
		t.Fatalf("import printed %q (%v)", out, err)
	}
	if _, err := certs(env, "import", "--p12", p12); err == nil || !strings.Contains(err.Error(), "already imported") {
		t.Fatalf("second import: %v, want already imported", err)
	}
	if out, err := certs(noenv, "list"); err != nil || !strings.Contains(out, c.ID) || !strings.Contains(out, "active") {
		t.Fatalf("list: %q %v", out, err)
	}
	if out, err := certs(noenv, "show", c.ID); err != nil || !strings.Contains(out, "12345678") {
		t.Fatalf("show: %q %v", out, err)
	}
	if out, err := certs(noenv, "deactivate", c.ID); err != nil || !strings.Contains(out, "deactivated") {
		t.Fatalf("deactivate: %q %v", out, err)
	}
	if _, err := certs(noenv, "show", "cert_nope"); err == nil {
		t.Fatal("show of an unknown id succeeded")
	}
	if _, err := certs(noenv, "frobnicate"); err == nil {
		t.Fatal("unknown subcommand succeeded")
	}
}
