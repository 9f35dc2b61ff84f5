//go:build linux

package powerfs_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemon is a posgate serve child process.
type daemon struct {
	cmd    *exec.Cmd
	url    string // http://ADDR
	stderr *syncBuffer
	done   chan error // Wait's result
}

// syncBuffer is a bytes.Buffer safe for the child's writer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// tail returns the last n bytes written, for failure messages.
func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	return string(b[max(0, len(b)-n):])
}

// startDaemon starts `posgate serve --config cfg` and waits for its
// "posgate listening on http://ADDR" line. kl, if not nil, gets its pid
// at once, so a cut during start-up kills it too.
func startDaemon(bin, cfg string, kl *killer) (*daemon, error) {
	d := &daemon{stderr: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(bin, "serve", "--config", cfg)
	d.cmd.Dir = filepath.Dir(cfg) // never a cwd inside the mount
	d.cmd.Stderr = d.stderr
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	children.add(d.cmd.Process)
	if kl != nil {
		kl.set(d.cmd.Process)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "posgate listening on "); ok {
				addr <- a
			}
		}
		close(addr)
		err := d.cmd.Wait() // after the last read, as exec requires
		children.remove(d.cmd.Process)
		d.done <- err
	}()
	select {
	case a, ok := <-addr:
		if ok {
			d.url = a
			return d, nil
		}
		err = errors.New("exited before listening")
	case <-time.After(listenTimeout):
		err = errors.New("not listening after " + listenTimeout.String())
	}
	d.kill()
	return nil, fmt.Errorf("posgate serve: %v\n%s", err, d.stderr.tail(2000))
}

// kill SIGKILLs the daemon by pid and reaps it.
func (d *daemon) kill() {
	_ = d.cmd.Process.Kill()
	d.wait()
}

// stop asks the daemon to shut down (SIGTERM), and kills it if it has
// not within waitTimeout.
func (d *daemon) stop() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(waitTimeout):
		d.kill()
		return errors.New("posgate serve did not stop on SIGTERM")
	}
}

// exit waits up to d for the daemon to exit on its own, then kills it.
func (d *daemon) exit(timeout time.Duration) {
	select {
	case err := <-d.done:
		d.done <- err
	case <-time.After(timeout):
		d.kill()
	}
}

// wait reaps the daemon, which must be dying.
func (d *daemon) wait() {
	select {
	case err := <-d.done:
		d.done <- err
	case <-time.After(waitTimeout):
	}
}

// client is the load generator's and the checker's view of the API.
type client struct {
	http   *http.Client
	url    string
	apiKey string // client_id:client_secret
}

// post sends a creating request and decodes a 2xx answer into out. The
// status is 0 when no answer came.
func (c *client) post(path, idemKey string, body []byte, out any) (int, error) {
	req, err := http.NewRequest(http.MethodPost, c.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Api-Key", c.apiKey)
	req.Header.Set("Idempotency-Key", idemKey)
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, out)
}

// get fetches one page into out.
func (c *client) get(path string, out any) error {
	req, err := http.NewRequest(http.MethodGet, c.url+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Api-Key", c.apiKey)
	status, err := c.do(req, out)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("GET %s: status %d", path, status)
	}
	return err
}

func (c *client) do(req *http.Request, out any) (int, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err // no whole answer: no ack
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: status %d: %s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %v: %s", req.Method, req.URL.Path, err, b)
	}
	return resp.StatusCode, nil
}

// listAll follows next_cursor through a list route.
func listAll[T any](c *client, path string) ([]T, error) {
	var all []T
	cursor := ""
	for {
		var page struct {
			Data       []T    `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		p := path
		if cursor != "" {
			p += sep + "cursor=" + cursor
		}
		if err := c.get(p, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if page.NextCursor == "" || len(page.Data) == 0 {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// runCLI runs a posgate subcommand to completion and returns its stdout.
func runCLI(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = os.TempDir()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("posgate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// writeCertificate writes a self-signed RSA certificate for tin and its
// key as PEM files into dir, for `posgate certs import`.
func writeCertificate(t *testing.T, dir, tin string) (certPath, keyPath string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "posgate power-cut test", SerialNumber: tin},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}
