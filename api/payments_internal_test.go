package api

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseWait(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30s", 30 * time.Second, true},
		{"30", 30 * time.Second, true},
		{"1.5s", 1500 * time.Millisecond, true},
		{"0", 0, true},
		{"60s", maxWait, true},
		{"60", maxWait, true},
		{"61", 0, false},
		{"120s", 0, false},
		{"999999", 0, false},
		{"9223372036854775807", 0, false}, // overflowed to a negative Duration once
		{"9223372036854775808", 0, false},
		{"-9223372036854775808", 0, false},
		{"2562048h", 0, false},
		{"-1s", 0, false},
		{"-1", 0, false},
		{"soon", 0, false},
	} {
		got, err := parseWait(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseWait(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "wait: must be from 0s to 1m0s") {
			t.Errorf("parseWait(%q): %v; want the bounds named", tc.in, err)
		}
	}
}

// FuzzParseWait: ?wait= is either a duration from 0 to maxWait or a
// validation error naming wait; never a negative, an overflow or a panic.
func FuzzParseWait(f *testing.F) {
	for _, s := range []string{"30s", "30", "9223372036854775807", "-1", "1e3", "2562048h", "60.000000001s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseWait(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Details["field"] != "wait" {
				t.Fatalf("%q: %v is not a validation error naming wait", s, err)
			}
			return
		}
		if d < 0 || d > maxWait {
			t.Fatalf("%q: %v outside 0..%v", s, d, maxWait)
		}
	})
}
