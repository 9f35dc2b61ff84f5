package api

import (
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
		{"120s", maxWait, true}, // capped
		{"999999", maxWait, true},
		{"-1s", 0, false},
		{"soon", 0, false},
	} {
		got, err := parseWait(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseWait(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
