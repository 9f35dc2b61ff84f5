package main

import (
	"strings"
	"testing"
	"time"
)

// The formatter prints what plain go test prints: each package's ok/FAIL
// line and the output of failed tests (also those a panic left running),
// not the output of passing ones, and names the packages still running.
func TestFormatter(t *testing.T) {
	var out strings.Builder
	f := newFormatter(&out)
	for _, l := range []string{
		`{"Action":"start","Package":"p/a"}`,
		`{"Action":"start","Package":"p/b"}`,
		`{"Action":"start","Package":"p/c"}`,
		`{"Action":"run","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"    a_test.go:3: quiet log\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"SUMMARY a: 0 lost\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}`,
		`{"Action":"pass","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"p/a","Output":"PASS\n"}`,
		`{"Action":"output","Package":"p/a","Output":"ok  \tp/a\t0.01s\n"}`,
		`{"Action":"pass","Package":"p/a"}`,
		`{"Action":"output","Package":"p/b","Test":"TestBad","Output":"=== RUN   TestBad\n"}`,
		`{"Action":"output","Package":"p/b","Test":"TestBad","Output":"    b_test.go:4: wrong answer\n"}`,
		`{"Action":"output","Package":"p/b","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}`,
		`{"Action":"fail","Package":"p/b","Test":"TestBad"}`,
		`{"Action":"output","Package":"p/b","Output":"FAIL\tp/b\t0.02s\n"}`,
		`{"Action":"fail","Package":"p/b"}`,
		`{"Action":"output","Package":"p/c","Test":"TestHang","Output":"panic: test timed out after 1s\n"}`,
	} {
		f.line([]byte(l))
	}
	f.progress(time.Now().Add(time.Minute))
	f.line([]byte(`{"Action":"output","Package":"p/c","Output":"FAIL\tp/c\t1.00s\n"}`))
	f.line([]byte(`{"Action":"fail","Package":"p/c"}`))
	got := out.String()
	for _, want := range []string{"ok  \tp/a\t0.01s\n", "SUMMARY a: 0 lost\n", "wrong answer", "--- FAIL: TestBad", "FAIL\tp/b\t0.02s\n",
		"2 packages done; running: p/c (1m0s)", "panic: test timed out", "FAIL\tp/c\t1.00s\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"quiet log", "=== RUN", "PASS\n"} {
		if strings.Contains(got, not) {
			t.Errorf("output has %q:\n%s", not, got)
		}
	}
}

// run passes the command's exit status on.
func TestRunExitStatus(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"sh", "-c", `echo '{"Action":"output","Package":"p","Output":"FAIL\tp\t0.1s\n"}'; exit 3`}, time.Hour, &out, &errb); code != 3 {
		t.Fatalf("exit status %d, want 3", code)
	}
	if !strings.Contains(out.String(), "FAIL\tp\t0.1s") {
		t.Fatalf("output %q", out.String())
	}
}
