package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A panicking handler answers a 500 JSON error; the stack reaches the log
// and never the client.
func TestRecoverPanic(t *testing.T) {
	var logBuf bytes.Buffer
	log := zerolog.New(&logBuf)
	h := withRequestLog(log, nil, withRecover(log, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("kaboom")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/x", nil))
	if rec.Code != 500 {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	body := rec.Body.String()
	if !strings.Contains(body, `"code":"INTERNAL"`) || strings.Contains(body, "kaboom") || strings.Contains(body, "goroutine") {
		t.Fatalf("client saw %s", body)
	}
	if !strings.Contains(logBuf.String(), "kaboom") || !strings.Contains(logBuf.String(), "recover_internal_test.go") {
		t.Fatalf("log lacks the panic and its stack: %s", logBuf.String())
	}
}
