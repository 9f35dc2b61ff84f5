package api

import (
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
