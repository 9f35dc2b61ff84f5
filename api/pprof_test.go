package api_test

import (
	"bytes"
	"testing"

	"github.com/posgate/posgate/api"
)

// /debug/pprof is off by default; on, only admin keys reach it.
func TestPprof(t *testing.T) {
	t.Run("OffByDefault", func(t *testing.T) {
		e := newEnv(t)
		r := e.do(t, "GET", "/debug/pprof/", &e.admin, "")
		if code, _ := r.errorCode(t); r.status != 404 || code != "NOT_FOUND" {
			t.Fatalf("status %d code %s, want 404 NOT_FOUND", r.status, code)
		}
	})
	e := newEnvWith(t, func(d *api.Deps) { d.Pprof = true })
	t.Run("NoKey", func(t *testing.T) {
		if r := e.do(t, "GET", "/debug/pprof/", nil, ""); r.status != 401 {
			t.Fatalf("status %d, want 401", r.status)
		}
	})
	t.Run("POSKey", func(t *testing.T) {
		r := e.do(t, "GET", "/debug/pprof/heap?debug=1", &e.pos, "")
		if code, _ := r.errorCode(t); r.status != 403 || code != "FORBIDDEN" {
			t.Fatalf("status %d code %s, want 403 FORBIDDEN", r.status, code)
		}
	})
	t.Run("Admin", func(t *testing.T) {
		r := e.do(t, "GET", "/debug/pprof/", &e.admin, "")
		if r.status != 200 || !bytes.Contains(r.body, []byte("goroutine")) {
			t.Fatalf("index: status %d body %.200q", r.status, r.body)
		}
		r = e.do(t, "GET", "/debug/pprof/goroutine?debug=1", &e.admin, "")
		if r.status != 200 || !bytes.Contains(r.body, []byte("goroutine profile:")) {
			t.Fatalf("goroutine: status %d body %.200q", r.status, r.body)
		}
		// A CPU profile: pprof's protobuf, gzipped.
		r = e.do(t, "GET", "/debug/pprof/profile?seconds=1", &e.admin, "")
		if r.status != 200 || !bytes.HasPrefix(r.body, []byte{0x1f, 0x8b}) {
			t.Fatalf("profile: status %d body %.100q", r.status, r.body)
		}
	})
}
