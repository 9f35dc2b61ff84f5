package fiscal

import (
	"math"
	"strconv"
	"testing"
)

func TestMoneyString(t *testing.T) {
	for _, tc := range []struct {
		m    Money
		want string
	}{
		{0, "0.00"}, {5, "0.05"}, {99, "0.99"}, {9901, "99.01"}, {100000, "1000.00"},
		{123456789, "1234567.89"}, {-5, "-0.05"}, {-250050, "-2500.50"},
		{math.MaxInt64, "92233720368547758.07"}, {math.MinInt64, "-92233720368547758.08"},
	} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("Money(%d).String()=%q, want %q", int64(tc.m), got, tc.want)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	for _, tc := range []struct {
		in     string
		places int
		want   int64
		ok     bool
	}{
		{"1", 3, 1000, true}, {"1.5", 3, 1500, true}, {"0.001", 3, 1, true}, {"2.000", 3, 2000, true},
		{"9.5", 2, 950, true}, {"21", 2, 2100, true}, {"-1.25", 2, -125, true}, {"0", 3, 0, true},
		{"1.0001", 3, 0, false}, {"1e3", 3, 0, false}, {"1E3", 3, 0, false}, {"+1", 3, 0, false},
		{".5", 3, 0, false}, {"5.", 3, 0, false}, {"", 3, 0, false}, {"-", 3, 0, false},
		{"1.2.3", 3, 0, false}, {"12345678901234567890", 3, 0, false}, {"0x10", 3, 0, false},
	} {
		got, err := parseDecimal(tc.in, tc.places)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseDecimal(%q, %d)=%d, %v; want %d ok=%v", tc.in, tc.places, got, err, tc.want, tc.ok)
		}
	}
}

func TestRounding(t *testing.T) {
	for _, tc := range []struct{ qty, price, want int64 }{
		{333, 1999, 666},   // 6.65667 → 6.66
		{1500, 101, 152},   // 1.515 → 1.52, half away from zero
		{1000, 1999, 1999}, // exact
		{1, 1, 0},          // 0.001 × 0.01 → 0.00
		{500, 1, 1},        // 0.005 → 0.01
		{MaxQuantity, MaxUnitPrice, MaxQuantity / 1000 * MaxUnitPrice},
	} {
		if got := lineGross(tc.qty, tc.price); got != tc.want {
			t.Errorf("lineGross(%d, %d)=%d, want %d", tc.qty, tc.price, got, tc.want)
		}
	}
	// Net never overflows for the largest invoice validation allows.
	huge := int64(MaxItems) * lineGross(MaxQuantity, MaxUnitPrice)
	if got, want := mulDivRound(huge, 10000, 12100), int64(math.Round(float64(huge)/1.21)); absDiff(got, want) > 1<<12 {
		t.Errorf("mulDivRound(%d)=%d, want about %d", huge, got, want)
	}
	if got, want := mulDivRound(121, 10000, 12100), int64(100); got != want {
		t.Errorf("mulDivRound(121)=%d, want %d", got, want)
	}
}

func absDiff(a, b int64) int64 {
	if a > b {
		return a - b
	}
	return b - a
}

// FuzzParseDecimal: no panic; a parsed value formats back to a text that
// parses to the same value.
func FuzzParseDecimal(f *testing.F) {
	for _, s := range []string{"1", "1.5", "0.001", "-2.25", "1e3", "999999999999999.999", ""} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, places int) {
		places = ((places % 4) + 4) % 4
		v, err := parseDecimal(s, places)
		if err != nil {
			return
		}
		back, err := parseDecimal(formatDecimal(v, places), places)
		if err != nil || back != v {
			t.Fatalf("parseDecimal(%q)=%d, formatted %q, reparsed %d (%v)", s, v, formatDecimal(v, places), back, err)
		}
		if places == 2 {
			if _, err := strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("accepted %q, which is not a number", s)
			}
		}
	})
}
