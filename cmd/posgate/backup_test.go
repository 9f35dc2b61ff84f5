package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// backup → restore → start: a backup taken while the daemon serves,
// restored into a fresh data directory, starts a daemon that knows the same
// keys (the store) and can open their sealed secrets (the master key). A
// restore over the serving daemon's directory is refused.
func TestBackupRestoreStart(t *testing.T) {
	cfg := writeConfig(t, "")
	admin := cliKey(t, cfg, "admin")
	d := startDaemon(t, cfg)

	out := filepath.Join(t.TempDir(), "posgate.tar.gz")
	if msg, err := cli(t, "backup", "--config", cfg, "--out", out); err != nil || !strings.Contains(msg, "backup written") {
		t.Fatalf("backup: %v %s", err, msg)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if _, err := cli(t, "restore", "--config", cfg, "--force", out); err == nil || !strings.Contains(err.Error(), "daemon is running") {
		t.Fatalf("restore over a serving daemon: %v, want a refusal", err)
	}
	// A second daemon on the same data directory is refused too.
	if _, err := cli(t, "serve", "--config", cfg); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second serve on one data dir: %v, want a refusal", err)
	}
	d.stop(t)

	fresh := writeConfig(t, "")
	if msg, err := cli(t, "restore", "--config", fresh, out); err != nil || !strings.Contains(msg, "restored") {
		t.Fatalf("restore: %v %s", err, msg)
	}
	d2 := startDaemon(t, fresh)
	if got := get(t, d2.url+"/v1/api-keys", &admin); got != 200 {
		t.Fatalf("restored daemon with the old admin key: %d, want 200", got)
	}
	// A signed request needs the key's sealed secret: the restored master
	// key opens it.
	ts := time.Now().UTC().Format(time.RFC3339)
	mac := hmac.New(sha256.New, []byte(admin.ClientSecret))
	mac.Write([]byte(ts + ".GET./v1/api-keys."))
	req, _ := http.NewRequest("GET", d2.url+"/v1/api-keys", nil)
	req.Header.Set("X-Api-Key", admin.ClientID)
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("X-Signature", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("signed request on the restored daemon: %d, want 200", res.StatusCode)
	}
}
