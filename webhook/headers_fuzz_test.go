package webhook

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzHeaders: an accepted custom header never reads as a reserved one,
// survives Go's header canonicalisation as its own field, and its masked
// form never reveals the value beyond an auth scheme word.
func FuzzHeaders(f *testing.F) {
	for _, s := range [][2]string{
		{"Authorization", "Bearer abc"}, {"X_Webhook_Signature", "x"}, {"webhook_id", "1"}, {"content_TYPE", "a"},
		{"X-Token", "tok"}, {"X Y", "v"}, {"Host", "h"}, {"A", "Basic dXNlcjpwYXNz"}, {"b", "v\r\nX: y"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		err := validateHeaders(map[string]string{name: value})
		if err != nil {
			if fe, ok := err.(*FieldError); !ok || !strings.HasPrefix(fe.Field, "headers") {
				t.Fatalf("error %v does not name headers", err)
			}
			return
		}
		n := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		for _, r := range []string{HeaderTimestamp, HeaderSignature, HeaderStdID, HeaderStdTimestamp, HeaderStdSignature, "Host", "Content-Type", "Content-Length"} {
			if n == strings.ToLower(r) {
				t.Fatalf("accepted %q, which reads as %s", name, r)
			}
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			t.Fatalf("accepted a value with a control character: %q", value)
		}
		h := http.Header{}
		h.Set(name, value)
		if len(h) != 1 {
			t.Fatalf("header %q did not stay one field", name)
		}
		m := maskValue(value)
		if m != "****" && !(strings.HasSuffix(m, " ****") && strings.HasPrefix(value, strings.TrimSuffix(m, " ****")+" ")) {
			t.Fatalf("mask %q of %q", m, value)
		}
		if maskValue(m) != m {
			t.Fatalf("mask not idempotent: %q → %q", m, maskValue(m))
		}
	})
}
