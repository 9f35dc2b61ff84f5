package fiscal

import (
	"errors"
	"strconv"
	"strings"
)

// Money is an amount in integer minor units (1234 = 12.34), as everywhere
// in posgate's API.
type Money int64

// String formats m with a dot and two decimals and no thousands
// separators: 1234567 → "12345.67", -5 → "-0.05". Signing schemes sign
// exactly this text, so it must never depend on a locale.
func (m Money) String() string {
	neg := m < 0
	u := uint64(m)
	if neg {
		u = uint64(-m)
	}
	s := strconv.FormatUint(u/100, 10) + "." + twoDigits(u%100)
	if neg {
		return "-" + s
	}
	return s
}

func twoDigits(v uint64) string {
	if v < 10 {
		return "0" + strconv.FormatUint(v, 10)
	}
	return strconv.FormatUint(v, 10)
}

// errDecimal is returned by parseDecimal; callers name the field.
var errDecimal = errors.New("not a decimal number")

// parseDecimal parses a JSON number's text into an integer scaled by
// 10^places, exactly (no float on the way): "1.5" with 3 places → 1500.
// It refuses more decimals than places, exponents, and values whose
// scaled form does not fit in int64.
func parseDecimal(s string, places int) (int64, error) {
	if s == "" || strings.ContainsAny(s, "eE+") {
		return 0, errDecimal
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") || len(frac) > places {
		return 0, errDecimal
	}
	frac += strings.Repeat("0", places-len(frac))
	if len(whole) > 15 {
		return 0, errDecimal
	}
	v, err := strconv.ParseUint(whole+frac, 10, 63)
	if err != nil {
		return 0, errDecimal
	}
	if neg {
		return -int64(v), nil
	}
	return int64(v), nil
}

// formatDecimal is parseDecimal's inverse: 1500 with 3 places → "1.5",
// trailing zeros dropped, at least one digit before the dot.
func formatDecimal(v int64, places int) string {
	neg := v < 0
	if neg {
		v = -v
	}
	s := strconv.FormatInt(v, 10)
	if len(s) <= places {
		s = strings.Repeat("0", places-len(s)+1) + s
	}
	whole, frac := s[:len(s)-places], strings.TrimRight(s[len(s)-places:], "0")
	if frac != "" {
		whole += "." + frac
	}
	if neg {
		return "-" + whole
	}
	return whole
}
