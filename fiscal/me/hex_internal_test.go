package me

import (
	"strings"
	"testing"
)

func TestIsHex(t *testing.T) {
	for _, c := range []struct {
		n    int
		s    string
		want bool
	}{
		{32, "0123456789abcdefABCDEF0123456789", true},
		{32, "0123456789abcdefABCDEF012345678", false},   // 31
		{32, "0123456789abcdefABCDEF01234567890", false}, // 33
		{32, "0123456789abcdefABCDEF012345678g", false},
		{32, "0123456789abcdefABCDEF012345678 ", false},
		{512, strings.Repeat("aF", 256), true},
		{512, strings.Repeat("aF", 255) + "a", false},
		{0, "", true},
	} {
		if got := isHex(c.n, c.s); got != c.want {
			t.Errorf("isHex(%d, %q) = %v, want %v", c.n, c.s, got, c.want)
		}
	}
}
