package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// What http.ServeMux would answer itself (a redirect to a cleaned path,
// a 405 hidden by the catch-alls) is the JSON envelope, and a POST is
// never redirected to a path its signature does not cover.
func TestRoutingErrorsAreJSON(t *testing.T) {
	e := newEnv(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
		canonical    string
	}{
		{"POST", "//v1/payments", 404, "NOT_FOUND", "", "/v1/payments"},
		{"GET", "/v1/./api-keys", 404, "NOT_FOUND", "", "/v1/api-keys"},
		{"GET", "/v1/x/../api-keys", 404, "NOT_FOUND", "", "/v1/api-keys"},
		{"GET", "/v1", 404, "NOT_FOUND", "", "/v1/"},
		{"PUT", "/v1/api-keys", 405, "METHOD_NOT_ALLOWED", "GET, HEAD, POST", ""},
		{"POST", "/healthz", 405, "METHOD_NOT_ALLOWED", "GET, HEAD", ""},
		{"GET", "/v1/nothing", 404, "NOT_FOUND", "", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, nil)
			req.Header.Set("X-Api-Key", e.admin.ClientID+":"+e.admin.ClientSecret)
			req.Header.Set("Idempotency-Key", "route-test")
			res, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var env struct {
				Error struct {
					Code    string         `json:"code"`
					Message string         `json:"message"`
					Details map[string]any `json:"details"`
				} `json:"error"`
			}
			if err := json.NewDecoder(res.Body).Decode(&env); err != nil || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("status %d %s: not the JSON envelope (%v)", res.StatusCode, res.Header.Get("Content-Type"), err)
			}
			if res.StatusCode != tc.status || env.Error.Code != tc.code || res.Header.Get("Allow") != tc.allow {
				t.Fatalf("status %d code %s Allow %q (%s)", res.StatusCode, env.Error.Code, res.Header.Get("Allow"), env.Error.Message)
			}
			if got, _ := env.Error.Details["canonical_path"].(string); got != tc.canonical {
				t.Fatalf("canonical_path %q, want %q", got, tc.canonical)
			}
		})
	}
}
