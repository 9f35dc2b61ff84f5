package zvt

import (
	"fmt"
	"strconv"
)

// bcd encodes v as n bytes of packed BCD, most significant digit first.
// v must be ≥ 0 and fit in 2n digits.
func bcd(v int64, n int) []byte {
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		lo := v % 10
		v /= 10
		hi := v % 10
		v /= 10
		out[i] = byte(hi<<4 | lo)
	}
	return out
}

// unbcd decodes packed BCD; any nibble above 9 is an error.
func unbcd(b []byte) (int64, error) {
	var v int64
	for _, x := range b {
		hi, lo := x>>4, x&0x0F
		if hi > 9 || lo > 9 {
			return 0, fmt.Errorf("%w: bcd % X", ErrBadValue, b)
		}
		v = v*100 + int64(hi)*10 + int64(lo)
	}
	return v, nil
}

// bcdDigits returns the decimal digits of packed BCD b as text, for fields
// such as the terminal id where leading zeros matter.
func bcdDigits(b []byte) string {
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, hexDigit(x>>4), hexDigit(x&0x0F))
	}
	return string(out)
}

func hexDigit(n byte) byte {
	if n < 10 {
		return '0' + n
	}
	return 'A' + n - 10
}

// Password encodes a 6-digit ZVT password as 3 BCD bytes.
func Password(s string) ([]byte, error) {
	if len(s) != 6 {
		return nil, fmt.Errorf("%w: password must be 6 digits", ErrBadValue)
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: password must be 6 digits", ErrBadValue)
	}
	return bcd(int64(v), 3), nil
}

// currencies maps the ISO 4217 codes a store is likely to use to their
// numeric codes, which ZVT sends as 2-byte BCD (EUR = 09 78).
var currencies = map[string]int64{
	"EUR": 978, "CHF": 756, "GBP": 826, "USD": 840, "PLN": 985, "CZK": 203,
	"HUF": 348, "DKK": 208, "SEK": 752, "NOK": 578, "RSD": 941, "BAM": 977,
	"ALL": 8, "MKD": 807, "RON": 946, "BGN": 975, "TRY": 949,
}

// CurrencyCode returns the numeric ISO 4217 code for an alpha code.
func CurrencyCode(alpha string) (int64, error) {
	n, ok := currencies[alpha]
	if !ok {
		return 0, fmt.Errorf("%w: currency %q not supported", ErrBadValue, alpha)
	}
	return n, nil
}

// CurrencyAlpha returns the alpha code for a numeric one, or the number as
// text when it is not in the table.
func CurrencyAlpha(n int64) string {
	for a, v := range currencies {
		if v == n {
			return a
		}
	}
	return strconv.FormatInt(n, 10)
}
