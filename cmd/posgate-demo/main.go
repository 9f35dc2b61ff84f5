package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "./bin/posgate", "the posgate binary")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, *bin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// receiver is the shop's webhook endpoint: it verifies each request's
// Standard Webhooks signature (docs/webhooks.md) and keeps the events.
type receiver struct {
	mu     sync.Mutex
	secret string
	events []string
	bad    int
	got    chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var ev struct {
		Event string `json:"event"`
	}
	_ = json.Unmarshal(body, &ev)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.secret == "" { // the creation ping comes before the secret is known
		return
	}
	if !verify(rc.secret, r.Header, body) {
		rc.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	rc.events = append(rc.events, ev.Event)
	select {
	case rc.got <- struct{}{}:
	default:
	}
}

func verify(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return true
		}
	}
	return false
}

const demoConfig = `listen = "127.0.0.1:0"
data_dir = %q

[webhooks]
allow_http = true     # the demo's receiver is plain http on loopback
allow_private = true
retry_schedule = ["1s"]

[fiscal]
scheme = "me-iic"
tin = "12345678"
business_unit = "bb123bb123"
tcr = "cc123cc123"
software = "ss123ss123"
`

func run(ctx context.Context, bin string, out io.Writer) error {
	step := 0
	say := func(format string, a ...any) {
		step++
		fmt.Fprintf(out, "%2d. %s\n", step, fmt.Sprintf(format, a...))
	}
	dir, err := os.MkdirTemp("", "posgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "posgate.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, demoConfig, filepath.Join(dir, "data")), 0o600); err != nil {
		return err
	}

	// 1. The daemon, on simulated devices.
	cmd := exec.Command(bin, "serve", "--dev", "--simulate", "--config", cfg)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	lines := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // printer output nobody reads
			}
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return errors.New("posgate did not stop within 20 s of SIGTERM")
		}
	}
	defer stop()
	var base, key string
	keyRe := regexp.MustCompile(`X-Api-Key: (\S+)`)
	listenRe := regexp.MustCompile(`posgate listening on (http://\S+)`)
	for base == "" || key == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				return errors.New("posgate exited before listening")
			}
			if m := keyRe.FindStringSubmatch(l); m != nil && key == "" {
				key = m[1]
			}
			if m := listenRe.FindStringSubmatch(l); m != nil {
				base = m[1]
			}
		case <-ctx.Done():
			return errors.New("posgate did not start in time")
		}
	}
	say("posgate serve --dev --simulate started (pid %d) at %s with simulated terminal t1 and printer p1", pid, base)

	call := func(method, path string, body any) (map[string]any, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, base+path, rd)
		req.Header.Set("X-Api-Key", key)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "demo-"+strconv.FormatInt(time.Now().UnixNano(), 10))
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		var m map[string]any
		b, _ := io.ReadAll(res.Body)
		_ = json.Unmarshal(b, &m)
		if res.StatusCode >= 300 {
			return m, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		return m, nil
	}

	// 2. The shop's webhook receiver.
	rc := &receiver{got: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	ep, err := call("POST", "/v1/webhooks", map[string]any{"url": "http://" + ln.Addr().String() + "/hooks",
		"events": []string{"payment.completed", "invoice.created", "receipt.printed"}})
	if err != nil {
		return err
	}
	rc.mu.Lock()
	rc.secret, _ = ep["secret"].(string)
	rc.mu.Unlock()
	say("webhook endpoint %s registered for payment.completed, invoice.created, receipt.printed", ep["id"])

	// 3. The card payment.
	var pay map[string]any
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		pay, err = call("POST", "/v1/payments", map[string]any{"type": "sale", "terminal_id": "t1", "amount": 1250, "currency": "EUR", "reference": "demo-order-1"})
		if err == nil || time.Now().After(deadline) {
			break // the terminal registers just after start: busy until then
		}
	}
	if err != nil {
		return err
	}
	say("payment %s of 12.50 EUR started on terminal t1: %s", pay["id"], pay["status"])
	for pay["status"] == "pending" || pay["status"] == "in_progress" {
		if pay, err = call("GET", fmt.Sprintf("/v1/payments/%s?wait=30s", pay["id"]), nil); err != nil {
			return err
		}
	}
	if pay["status"] != "completed" {
		return fmt.Errorf("payment ended %v: %v", pay["status"], pay["result_text"])
	}
	say("payment completed: card %v, terminal receipt %v", pay["masked_pan"], pay["receipt_number"])

	// 4. The fiscal invoice it settles, printed on the simulated printer.
	inv, err := call("POST", "/v1/invoices", map[string]any{"type": "sale",
		"items":    []any{map[string]any{"name": "Espresso", "quantity": 2, "unit_price": 400, "vat_rate": 21}, map[string]any{"name": "Croissant", "quantity": 1, "unit_price": 450, "vat_rate": 21}},
		"payments": []any{map[string]any{"type": "card", "amount": 1250, "payment_id": pay["id"]}}})
	if err != nil {
		return err
	}
	sig, _ := inv["fiscal_signature"].(map[string]any)
	say("invoice %v issued and signed, IIC %v", inv["number"], sig["code"])
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if inv, err = call("GET", fmt.Sprintf("/v1/invoices/%s", inv["id"]), nil); err != nil {
			return err
		}
		p, _ := inv["print"].(map[string]any)
		if p != nil && p["state"] == "printed" {
			say("receipt printed on p1: fiscal receipt %v", p["receipt_number"])
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("invoice not printed: %v", inv["print"])
		}
	}

	// 5. The webhooks, verified at the receiver.
	want := []string{"payment.completed", "invoice.created", "receipt.printed"}
	for {
		rc.mu.Lock()
		got, bad := append([]string(nil), rc.events...), rc.bad
		rc.mu.Unlock()
		if bad > 0 {
			return fmt.Errorf("%d webhook requests failed signature verification", bad)
		}
		if containsAll(got, want) {
			say("receiver got %s, each signature verified", strings.Join(got, ", "))
			break
		}
		select {
		case <-rc.got:
		case <-ctx.Done():
			return fmt.Errorf("webhooks not received: got %v", got)
		}
	}
	// The receiver's 2xx is recorded just after it is sent: look until
	// posgate shows all three delivered.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ds, err := call("GET", fmt.Sprintf("/v1/webhooks/%s/deliveries?state=delivered", ep["id"]), nil)
		if err != nil {
			return err
		}
		if n := len(ds["data"].([]any)); n >= len(want) {
			say("posgate reports the %d deliveries delivered", n)
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("posgate shows %d deliveries delivered, want %d", n, len(want))
		}
	}

	// 6. The end: the daemon by its pid.
	if err := stop(); err != nil {
		return fmt.Errorf("stop posgate: %w", err)
	}
	say("posgate (pid %d) stopped with SIGTERM; the sale is done", pid)
	return nil
}

func containsAll(got, want []string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}
