package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the daemon to write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeConfig writes a config listening on a free loopback port with its
// data in a temp dir, and returns its path.
func writeConfig(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "posgate.toml")
	cfg := fmt.Sprintf("listen = \"127.0.0.1:0\"\ndata_dir = %q\n%s", filepath.Join(dir, "data"), extra)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func noenv(string) string { return "" }

var listenLine = regexp.MustCompile(`posgate listening on (http://\S+)`)

// daemon is a run() serving in the background.
type daemon struct {
	url    string
	cancel context.CancelFunc
	done   chan error
	stderr *syncBuffer
	once   sync.Once
}

// wait waits once for run to return; later calls report nothing.
func (d *daemon) wait(timeout time.Duration) (err error, ok bool) {
	ok = true
	d.once.Do(func() {
		select {
		case err = <-d.done:
		case <-time.After(timeout):
			ok = false
		}
	})
	return err, ok
}

// startDaemon calls run("serve") and waits until it listens.
func startDaemon(t *testing.T, cfgPath string, args ...string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	d := &daemon{cancel: cancel, done: make(chan error, 1), stderr: stderr}
	go func() {
		d.done <- run(ctx, append([]string{"serve", "--config", cfgPath}, args...), noenv, stdout, stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenLine.FindStringSubmatch(stdout.String()); m != nil {
			d.url = m[1]
			t.Cleanup(func() { d.stop(t) })
			return d
		}
		select {
		case err := <-d.done:
			t.Fatalf("serve exited before listening: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	t.Fatalf("serve did not listen within 10 s:\n%s", stderr.String())
	return nil
}

func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	err, ok := d.wait(15 * time.Second)
	switch {
	case !ok:
		t.Error("serve did not stop within 15 s")
	case err != nil:
		t.Errorf("serve returned %v", err)
	}
}

// cli runs a one-shot subcommand and returns its stdout.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, noenv, &stdout, &stderr)
	return stdout.String(), err
}

type createdKey struct {
	ID           string `json:"id"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Role         string `json:"role"`
	Label        string `json:"label"`
}

func cliKey(t *testing.T, cfg, role string) createdKey {
	t.Helper()
	out, err := cli(t, "keys", "create", "--config", cfg, "--label", "test "+role, "--role", role, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var k createdKey
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatalf("keys create --json printed %q: %v", out, err)
	}
	if k.ClientSecret == "" || k.Role != role {
		t.Fatalf("keys create --json: %+v", k)
	}
	return k
}

func get(t *testing.T, url string, k *createdKey) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if k != nil {
		req.Header.Set("X-Api-Key", k.ClientID+":"+k.ClientSecret)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func TestServeHealthz(t *testing.T) {
	d := startDaemon(t, writeConfig(t, ""))
	if got := get(t, d.url+"/healthz", nil); got != 200 {
		t.Fatalf("healthz %d", got)
	}
}

func TestCLIKeysOnTheAPI(t *testing.T) {
	cfg := writeConfig(t, "")
	admin := cliKey(t, cfg, "admin")
	pos := cliKey(t, cfg, "pos")
	d := startDaemon(t, cfg)

	if got := get(t, d.url+"/v1/api-keys", &admin); got != 200 {
		t.Fatalf("CLI admin key: %d", got)
	}
	if got := get(t, d.url+"/v1/api-keys", &pos); got != 403 {
		t.Fatalf("pos key on admin route: %d, want 403", got)
	}
	wrong := admin
	wrong.ClientSecret = strings.ToUpper(wrong.ClientSecret)
	if got := get(t, d.url+"/v1/api-keys", &wrong); got != 401 {
		t.Fatalf("wrong secret: %d, want 401", got)
	}
	// Revoked by the CLI while the daemon serves: the very next request fails.
	if _, err := cli(t, "keys", "revoke", "--config", cfg, admin.ID); err != nil {
		t.Fatal(err)
	}
	if got := get(t, d.url+"/v1/api-keys", &admin); got != 401 {
		t.Fatalf("revoked key: %d, want 401", got)
	}
}

func TestRestartKeepsKeys(t *testing.T) {
	cfg := writeConfig(t, "")
	admin := cliKey(t, cfg, "admin")
	d := startDaemon(t, cfg)
	if got := get(t, d.url+"/v1/api-keys", &admin); got != 200 {
		t.Fatalf("first run: %d", got)
	}
	d.stop(t)
	d = startDaemon(t, cfg)
	if got := get(t, d.url+"/v1/api-keys", &admin); got != 200 {
		t.Fatalf("after restart: %d", got)
	}
	out, err := cli(t, "keys", "list", "--config", cfg, "--json")
	if err != nil || !strings.Contains(out, admin.ID) || strings.Contains(out, admin.ClientSecret) {
		t.Fatalf("keys list: %v\n%s", err, out)
	}
}

// A SIGTERM during a slow request lets it finish: the upload that was
// under way when the signal came still gets its 201, and run returns nil.
func TestSIGTERMFinishesSlowRequest(t *testing.T) {
	cfg := writeConfig(t, "")
	admin := cliKey(t, cfg, "admin")
	d := startDaemon(t, cfg)

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", d.url+"/v1/api-keys", pr)
	req.Header.Set("X-Api-Key", admin.ClientID+":"+admin.ClientSecret)
	req.Header.Set("Idempotency-Key", "slow-1")
	req.ContentLength = int64(len(`{"label":"slow","role":"pos"}`))
	type result struct {
		status int
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			resc <- result{err: err}
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		resc <- result{status: res.StatusCode}
	}()
	if _, err := pw.Write([]byte(`{"label":"slow",`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the request is in flight on the server
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Shutdown has begun: new connections are refused…
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(d.stderr.String(), "http shutting down") {
		if time.Now().After(deadline) {
			t.Fatalf("no shutdown after SIGTERM:\n%s", d.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// …but the request under way completes.
	if _, err := pw.Write([]byte(`"role":"pos"}`)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-resc
	if r.err != nil || r.status != 201 {
		t.Fatalf("slow request: status %d err %v, want 201", r.status, r.err)
	}
	err, ok := d.wait(10 * time.Second)
	if !ok {
		t.Fatal("run did not return after SIGTERM")
	}
	if err != nil {
		t.Fatalf("run returned %v after SIGTERM", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		file string
		env  map[string]string
		want string
	}{
		"ErrListen":      {file: `listen = "nowhere"`, want: `config listen = "nowhere"`},
		"ErrUnknownKey":  {file: "[webhooks]\nretries = 3", want: "webhooks.retries"},
		"ErrLevel":       {file: "[log]\nlevel = \"loud\"", want: "log.level"},
		"ErrDuration":    {file: "[payments]\ntimeout = \"soon\"", want: "soon"},
		"ErrEnvBool":     {env: map[string]string{"POSGATE_WEBHOOKS_ALLOW_HTTP": "maybe"}, want: "webhooks.allow_http"},
		"ErrEnvAttempts": {env: map[string]string{"POSGATE_WEBHOOKS_MAX_ATTEMPTS": "0"}, want: "webhooks.max_attempts = 0"},
		"ErrTerminal":    {file: "[[terminals]]\nid = \"t1\"\nport = \"ttyUSB0\"", want: "terminals[0].port"},
		"ErrISL":         {file: "[[printers]]\nid = \"p1\"\nport = \"/dev/ttyS1\"\nprotocol = \"datecs-isl\"", want: "printers[0].protocol"},
		"ErrESCPOSPage":  {file: "[[printers]]\nid = \"r1\"\nport = \"/dev/usb/lp0\"\nprotocol = \"escpos\"\ncode_page = \"cp1251\"", want: "printers[0].code_page"},
		"ErrESCPOSWidth": {file: "[[printers]]\nid = \"r1\"\nport = \"tcp://10.0.0.9:9100\"\nprotocol = \"escpos\"\nwidth = 8", want: "printers[0].width = 8"},
		"ErrTerminalTLS": {file: "[[terminals]]\nid = \"t1\"\nport = \"tls://10.0.0.7\"", want: "want tls://host:port"},
		"ErrDupID":       {file: "[[terminals]]\nid = \"d\"\nport = \"/dev/x\"\n[[printers]]\nid = \"d\"\nport = \"/dev/y\"", want: "printers[0].id"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "c.toml")
			os.WriteFile(path, []byte(tc.file), 0o600)
			getenv := func(k string) string { return tc.env[k] }
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"serve", "--config", path, "--print-config"}, getenv, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want mention of %q", err, tc.want)
			}
			var ce *ConfigError
			if strings.HasPrefix(name, "ErrEnv") && !errors.As(err, &ce) {
				t.Fatalf("err %T is not a *ConfigError", err)
			}
		})
	}
}

func TestPrintConfig(t *testing.T) {
	cfg := writeConfig(t, "[[terminals]]\nid = \"t1\"\nport = \"/dev/ttyUSB0\"\npassword = \"123456\"\n")
	env := map[string]string{"POSGATE_WEBHOOKS_RETRY_SCHEDULE": "1s,2s", "POSGATE_LOG_LEVEL": "debug"}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", cfg, "--print-config"}, func(k string) string { return env[k] }, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{`retry_schedule = ["1s", "2s"]`, `level = "debug"`, `password = "********"`, `max_attempts = 50`} {
		if !strings.Contains(s, want) {
			t.Errorf("print-config lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "123456") {
		t.Errorf("print-config shows the terminal password:\n%s", s)
	}
}

// --dev gives an empty store one admin key, printed with a curl line, and
// never a second one.
func TestDevBootstrapKey(t *testing.T) {
	cfg := writeConfig(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", cfg, "--dev"}, noenv, out, io.Discard) }()
	deadline := time.Now().Add(10 * time.Second)
	for !listenLine.MatchString(out.String()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`X-Api-Key: (\S+):(\S+)`).FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), "curl") {
		t.Fatalf("no key or curl line printed:\n%s", out.String())
	}
	k := createdKey{ClientID: m[1], ClientSecret: m[2]}
	d := startDaemon(t, cfg, "--dev")
	if got := get(t, d.url+"/v1/api-keys", &k); got != 200 {
		t.Fatalf("bootstrap key: %d", got)
	}
	list, _ := cli(t, "keys", "list", "--config", cfg, "--json")
	if n := strings.Count(list, `"role":"admin"`); n != 1 {
		t.Fatalf("%d admin keys after two --dev starts, want 1", n)
	}
}

// A tls://host:port terminal port is accepted (ZVT over TLS).
func TestConfigTLSTerminal(t *testing.T) {
	cfg := writeConfig(t, "[[terminals]]\nid = \"t1\"\nport = \"tls://127.0.0.1:22001\"\n")
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"serve", "--config", cfg, "--print-config"}, func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "tls://127.0.0.1:22001") {
		t.Fatalf("print-config:\n%s", out.String())
	}
}
