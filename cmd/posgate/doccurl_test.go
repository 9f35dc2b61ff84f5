//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/posgate/posgate/api"
)

// shBlock is a ```sh block of a doc that calls curl.
type shBlock struct {
	file, text string
	line       int
}

var fence = regexp.MustCompile("(?m)^([ \t]*)```sh\n((?:.*\n)*?)[ \t]*```")

// curlBlocks returns the sh blocks with curl in README.md and docs/*.md.
func curlBlocks(t *testing.T) []shBlock {
	t.Helper()
	files, _ := filepath.Glob("../../docs/*.md")
	files = append([]string{"../../README.md"}, files...)
	var out []shBlock
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fence.FindAllSubmatchIndex(b, -1) {
			indent, body := string(b[m[2]:m[3]]), string(b[m[4]:m[5]])
			if !regexp.MustCompile(`(?m)^\s*curl `).MatchString(body) {
				continue
			}
			var lines []string
			for _, l := range strings.SplitAfter(body, "\n") {
				lines = append(lines, strings.TrimPrefix(l, indent))
			}
			out = append(out, shBlock{file: strings.TrimPrefix(f, "../../"), text: strings.Join(lines, ""), line: bytes.Count(b[:m[0]], []byte("\n")) + 1})
		}
	}
	return out
}

var (
	errorCode   = regexp.MustCompile(`"error":\{"code":"([A-Z_]+)"`)
	allowedCode = regexp.MustCompile(`# answers \d* ?([A-Z_]+)`)
	urlHost     = regexp.MustCompile(`[a-z]+://([^/\s"'\\$]+)`)
	idRe        = regexp.MustCompile(`"id":"((pay|inv|we|dlv|cert)_[A-Za-z0-9_-]+)"`)
)

// TestDocCurlsRun runs every curl block of README.md and docs/ as printed,
// with sh, against a live `serve --dev --simulate`: nothing is substituted
// but the environment variables the README documents (POSGATE_URL, the
// admin key, ids from earlier answers). A block fails on a non-zero exit
// or an error answer its comments do not announce ("# answers CODE").
func TestDocCurlsRun(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (installed by .ci/run)")
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer receiver.Close()

	cfg := writeConfig(t, fiscalConfig+"\n[webhooks]\nallow_http = true\nallow_private = true\n")
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg, "--dev", "--simulate"}, noenv, stdout, io.Discard)
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
	var base string
	var key []string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := listenLine.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
	}
	key = regexp.MustCompile(`X-Api-Key: (\S+):(\S+)`).FindStringSubmatch(stdout.String())
	if base == "" || key == nil {
		t.Fatalf("no listen line or key:\n%s", stdout.String())
	}
	adminKey := key[1] + ":" + key[2]
	call := func(method, path, body string) map[string]any {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("X-Api-Key", adminKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "doccurl-"+path)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v map[string]any
		b, _ := io.ReadAll(res.Body)
		if err := json.Unmarshal(b, &v); err != nil || res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		return v
	}
	certs := call("GET", "/v1/certificates", "")["data"].([]any)
	inv := call("POST", "/v1/invoices", `{"type":"sale","items":[{"name":"Espresso","quantity":2,"unit_price":150,"vat_rate":21}],"payments":[{"type":"cash","amount":300}]}`)

	dir := t.TempDir()
	p12, err := os.ReadFile("../../fiscal/testdata/openssl3-aes.p12")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "taxpayer.p12"), p12, 0o600); err != nil {
		t.Fatal(err)
	}
	// The curls go through a proxy that checks each request and answer
	// against the OpenAPI document, so the docs' examples also prove the
	// document describes what the routes really take and give.
	proxy := openAPIProxy(t, base)
	vars := map[string]string{
		"POSGATE_URL": proxy, "CLIENT_ID": key[1], "CLIENT_SECRET": key[2],
		"CERT_ID": certs[0].(map[string]any)["id"].(string), "INVOICE_ID": inv["id"].(string),
		"WEBHOOK_URL": receiver.URL, "P12_PASSWORD": "posgate-test",
	}
	names := map[string]string{"pay": "PAYMENT_ID", "inv": "INVOICE_ID", "we": "ENDPOINT_ID", "dlv": "DELIVERY_ID", "cert": "CERT_ID"}
	documented := []string{"POSGATE_URL", "CLIENT_ID", "CLIENT_SECRET", "PAYMENT_ID", "INVOICE_ID", "CERT_ID", "ENDPOINT_ID", "DELIVERY_ID",
		"WEBHOOK_URL", "P12_PASSWORD"} // README "API keys and calling the API"; the last two where used
	blocks := curlBlocks(t)
	if len(blocks) < 10 {
		t.Fatalf("found only %d curl blocks", len(blocks))
	}
	for _, b := range blocks {
		where := b.file + ":" + itoa(b.line)
		if strings.Contains(b.text, "$DELIVERY_ID") && vars["DELIVERY_ID"] == "" {
			vars["DELIVERY_ID"] = waitDelivered(t, call, vars["ENDPOINT_ID"])
		}
		// Tests talk to loopback only: a block naming any other host
		// (a webhook URL the daemon would ping, a broker) must take it
		// from a variable, or not be a runnable block.
		for _, h := range urlHost.FindAllStringSubmatch(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(b.text, ""), -1) {
			if host := strings.Split(h[1], ":")[0]; host != "127.0.0.1" && host != "localhost" && host != "[" {
				t.Fatalf("%s names the host %q: a runnable example may only reach loopback or a variable", where, h[1])
			}
		}
		for _, v := range regexp.MustCompile(`\$([A-Z][A-Z0-9_]*)`).FindAllStringSubmatch(b.text, -1) {
			if !slices.Contains(documented, v[1]) {
				t.Fatalf("%s uses $%s, which the README does not document", where, v[1])
			}
			if vars[v[1]] == "" {
				t.Fatalf("%s uses $%s, but no earlier answer gave one", where, v[1])
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, "sh", "-ec", b.text)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
		for k, v := range vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s failed: %v\n%s\n%s", where, err, b.text, out)
			continue
		}
		allowed := []string{}
		for _, m := range allowedCode.FindAllStringSubmatch(b.text, -1) {
			allowed = append(allowed, m[1])
		}
		for _, m := range errorCode.FindAllStringSubmatch(string(out), -1) {
			if !slices.Contains(allowed, m[1]) {
				t.Errorf("%s answered %s:\n%s\n%s", where, m[1], b.text, out)
			}
		}
		for _, m := range idRe.FindAllStringSubmatch(string(out), -1) {
			if n := names[m[2]]; vars[n] == "" {
				vars[n] = m[1]
			}
		}
		t.Logf("%s ok (%d bytes)", where, len(out))
	}
}

// waitDelivered waits for a delivered delivery of the endpoint, as a
// reader of the doc would look at the list until one is there.
func waitDelivered(t *testing.T, call func(string, string, string) map[string]any, endpoint string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if d := call("GET", "/v1/webhooks/"+endpoint+"/deliveries?state=delivered", "")["data"].([]any); len(d) > 0 {
			return d[0].(map[string]any)["id"].(string)
		}
	}
	t.Fatal("no delivery was delivered within 10 s")
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// openAPIProxy forwards to base and validates every request and answer
// with libopenapi-validator against posgate's own OpenAPI document.
func openAPIProxy(t *testing.T, base string) string {
	t.Helper()
	doc, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	target, _ := url.Parse(base)
	rp := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	rp.ModifyResponse = func(res *http.Response) error {
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		res.Body = io.NopCloser(bytes.NewReader(body))
		req := res.Request.Clone(context.Background())
		req.URL.Scheme, req.URL.Host = "http", "127.0.0.1:8420" // the document's server
		if reqBody, ok := res.Request.Context().Value(bodyKey{}).([]byte); ok {
			req.Body = io.NopCloser(bytes.NewReader(reqBody))
		}
		check := &http.Response{StatusCode: res.StatusCode, Header: res.Header, Body: io.NopCloser(bytes.NewReader(body)), Request: req}
		mu.Lock()
		defer mu.Unlock()
		if res.StatusCode < 400 { // a refused request may well not match
			vreq := req.Clone(context.Background())
			if b, ok := res.Request.Context().Value(bodyKey{}).([]byte); ok {
				vreq.Body = io.NopCloser(bytes.NewReader(b))
			}
			if ok, verrs := v.ValidateHttpRequestSync(vreq); !ok {
				for _, e := range verrs {
					t.Errorf("request %s %s does not match the OpenAPI document: %s %s %v", req.Method, req.URL.Path, e.Message, e.Reason, e.SchemaValidationErrors)
				}
			}
		}
		if ok, verrs := v.ValidateHttpResponse(req, check); !ok {
			for _, e := range verrs {
				t.Errorf("%s %s → %d does not match the OpenAPI document: %s %s %v\n%.300s", req.Method, req.URL.Path, res.StatusCode, e.Message, e.Reason, e.SchemaValidationErrors, body)
			}
		}
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(b))
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyKey{}, b)))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type bodyKey struct{}
