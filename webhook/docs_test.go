package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/webhook"
)

// verifyWebhook is docs/webhooks.md's Go snippet, byte for byte
// (TestDocsGoSnippetIsThisOne checks), run against real signed requests.
func verifyWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	ts := h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("missing or bad webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp outside the 5-minute tolerance")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("secret is not whsec_ + base64")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + ts + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// docBlock returns the first fenced code block of lang in docs/webhooks.md.
func docBlock(t *testing.T, lang string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "webhooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatalf("docs/webhooks.md has no %s block", lang)
	}
	return string(m[1])
}

func TestDocsGoSnippetIsThisOne(t *testing.T) {
	src, err := os.ReadFile("docs_test.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := docBlock(t, "go")
	fn := doc[strings.Index(doc, "func verifyWebhook"):]
	if !bytes.Contains(src, []byte(fn)) {
		t.Fatal("the Go snippet in docs/webhooks.md differs from verifyWebhook in docs_test.go; keep them identical")
	}
}

// docCase is one signed request and whether verification must pass.
type docCase struct {
	Name    string            `json:"name"`
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"` // lower-case names, as Node and most frameworks give them
	Body    string            `json:"body"`    // base64 of the raw bytes
	Now     int64             `json:"now"`
	OK      bool              `json:"ok"`
}

// docCases signs real requests with Sign: one secret, a rotation (two
// signatures, either secret verifies), and the ways verification must fail.
func docCases(t *testing.T) []docCase {
	now := time.Now()
	oldSecret, newSecret := webhook.NewSecret(), webhook.NewSecret()
	oldKey, _ := webhook.ParseKey(oldSecret)
	newKey, _ := webhook.ParseKey(newSecret)
	body := webhook.AppendBody(nil, &webhook.Envelope{Event: "invoice.created", EntryID: "evt_doc", Time: now, Attempt: 1, MaxAttempts: 50, StoreID: "shop-12"}, []byte(`{"number":"12/2026","total":1234, "note":"ünïcödé"}`))
	sign := func(at time.Time, keys ...webhook.Key) map[string]string {
		h := http.Header{}
		webhook.Sign(h, "evt_doc", at, body, keys)
		out := map[string]string{}
		for k, v := range h {
			out[strings.ToLower(k)] = v[0]
		}
		return out
	}
	b64 := base64.StdEncoding.EncodeToString
	tampered := bytes.Replace(body, []byte("1234"), []byte("1235"), 1)
	return []docCase{
		{"OK", newSecret, sign(now, newKey), b64(body), now.Unix(), true},
		{"OKRotationNewSecret", newSecret, sign(now, newKey, oldKey), b64(body), now.Unix(), true},
		{"OKRotationOldSecret", oldSecret, sign(now, newKey, oldKey), b64(body), now.Unix(), true},
		{"ErrWrongSecret", oldSecret, sign(now, newKey), b64(body), now.Unix(), false},
		{"ErrTamperedBody", newSecret, sign(now, newKey), b64(tampered), now.Unix(), false},
		{"ErrStale", newSecret, sign(now.Add(-6*time.Minute), newKey), b64(body), now.Unix(), false},
		{"ErrFuture", newSecret, sign(now.Add(6*time.Minute), newKey), b64(body), now.Unix(), false},
	}
}

func TestDocsGoSnippetVerifies(t *testing.T) {
	for _, c := range docCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range c.Headers {
				h.Set(k, v)
			}
			body, _ := base64.StdEncoding.DecodeString(c.Body)
			err := verifyWebhook(c.Secret, h, body, time.Unix(c.Now, 0))
			if (err == nil) != c.OK {
				t.Fatalf("verifyWebhook: %v, want ok=%v", err, c.OK)
			}
		})
	}
}

// runSnippet runs a documented snippet plus a driver under interp, once
// per case, and checks its verdict. It skips when interp is not installed.
func runSnippet(t *testing.T, interp, file, snippet, driver string) {
	path, err := exec.LookPath(interp)
	if err != nil {
		t.Skipf("%s not installed", interp)
	}
	src := filepath.Join(t.TempDir(), file)
	if err := os.WriteFile(src, []byte(snippet+"\n"+driver), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range docCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			in, _ := json.Marshal(c)
			cmd := exec.Command(path, src)
			cmd.Stdin = bytes.NewReader(in)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", interp, err, out)
			}
			got := strings.TrimSpace(string(out))
			if (got == "ok") != c.OK {
				t.Fatalf("%s said %q, want ok=%v", interp, got, c.OK)
			}
		})
	}
}

func TestDocsPythonSnippetVerifies(t *testing.T) {
	runSnippet(t, "python3", "verify.py", docBlock(t, "python"), `
import json, sys
c = json.load(sys.stdin)
try:
    verify_webhook(c["secret"], c["headers"], base64.b64decode(c["body"]), c["now"])
    print("ok")
except ValueError as e:
    print("refused:", e)
`)
}

func TestDocsNodeSnippetVerifies(t *testing.T) {
	runSnippet(t, "node", "verify.js", docBlock(t, "js"), `
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const c = JSON.parse(input);
  try {
    verifyWebhook(c.secret, c.headers, Buffer.from(c.body, "base64"), c.now);
    console.log("ok");
  } catch (e) {
    console.log("refused: " + e.message);
  }
});
`)
}
