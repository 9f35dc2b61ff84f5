package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// setReadOnly makes the store's one writer connection refuse every write
// with SQLITE_READONLY, as a remounted-read-only or failing disk does,
// or lifts that.
func setReadOnly(t *testing.T, e *env, on bool) {
	t.Helper()
	v := "0"
	if on {
		v = "1"
	}
	if _, err := e.db.Write.Exec("PRAGMA query_only = " + v); err != nil {
		t.Fatal(err)
	}
}

// healthOf fetches /healthz and decodes its body.
func healthOf(t *testing.T, e *env) (int, map[string]any) {
	t.Helper()
	r := e.do(t, "GET", "/healthz", nil, "")
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("healthz body %q: %v", r.body, err)
	}
	return r.status, body
}

// A store that cannot write answers every creating request with 503
// STORE_UNAVAILABLE and a Retry-After, never 500, and /healthz says so
// (its probe really writes); once the store writes again, both recover
// without a restart.
func TestStoreUnavailableIs503(t *testing.T) {
	e := newEnv(t)
	if status, body := healthOf(t, e); status != 200 || body["store"] != "ok" {
		t.Fatalf("healthz before: %d %v", status, body)
	}
	setReadOnly(t, e, true)
	for i, req := range []struct{ path, body string }{
		{"/v1/api-keys", `{"label":"till 2","role":"pos"}`},
		{"/v1/api-keys", `{"label":"till 3","role":"pos"}`},
	} {
		r := e.do(t, "POST", req.path, &e.admin, req.body, "Idempotency-Key", "ro-"+string(rune('a'+i)), "Content-Type", "application/json")
		code, msg := r.errorCode(t)
		if r.status != 503 || code != "STORE_UNAVAILABLE" {
			t.Fatalf("POST %s with the store read-only: %d %s (%s), want 503 STORE_UNAVAILABLE", req.path, r.status, code, msg)
		}
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("503 without Retry-After")
		}
	}
	time.Sleep(1100 * time.Millisecond) // past the probe's cache
	if status, body := healthOf(t, e); status != 503 || body["store"] != "not writable" || body["status"] != "unavailable" {
		t.Fatalf("healthz with the store read-only: %d %v, want 503 store not writable", status, body)
	}

	setReadOnly(t, e, false)
	time.Sleep(1100 * time.Millisecond)
	if status, body := healthOf(t, e); status != 200 || body["store"] != "ok" {
		t.Fatalf("healthz after recovery: %d %v", status, body)
	}
	r := e.do(t, "POST", "/v1/api-keys", &e.admin, `{"label":"till 2","role":"pos"}`, "Idempotency-Key", "ro-a", "Content-Type", "application/json")
	if r.status != 201 {
		t.Fatalf("retry after recovery: %d %s, want 201", r.status, r.body)
	}
}

// A printer with paper out or its cover open makes /healthz degraded,
// naming the fault, as GET /v1/devices shows it.
func TestHealthzPrinterFault(t *testing.T) {
	e, sim := newPrinterEnv(t)
	if status, body := healthOf(t, e); status != 200 || body["status"] != "ok" {
		t.Fatalf("healthz with a good printer: %d %v", status, body)
	}
	for _, tc := range []struct {
		what string
		set  func(bool)
	}{{"paper out", sim.SetPaperOut}, {"cover open", sim.SetCoverOpen}} {
		tc.set(true)
		time.Sleep(1100 * time.Millisecond) // past the printer status cache
		status, body := healthOf(t, e)
		devices, _ := body["devices"].(map[string]any)
		p1, _ := devices["p1"].(map[string]any)
		if status != 200 || body["status"] != "degraded" || p1["state"] != "degraded" || !strings.Contains(p1["last_error"].(string), tc.what) {
			t.Fatalf("healthz with %s: %d %v, want status degraded and p1 degraded (%s)", tc.what, status, body, tc.what)
		}
		tc.set(false)
	}
	time.Sleep(1100 * time.Millisecond)
	if status, body := healthOf(t, e); status != 200 || body["status"] != "ok" {
		t.Fatalf("healthz after the faults cleared: %d %v", status, body)
	}
}
