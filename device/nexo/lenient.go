package nexo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Text is a string field that real terminals sometimes send as a number
// and the OpenAPI sometimes declares as one (POIReconciliationID
// "1000", CardCountryCode "826": research/nexo.md R1). It accepts both
// and keeps the digits as sent.
type Text string

// UnmarshalJSON accepts a JSON string, number or null.
func (t *Text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = Text(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %.20s", b)
	}
	*t = Text(n)
	return nil
}

// Int is an integer field that may arrive as a JSON number or as a string
// of digits (KeyVersion, AdyenCryptoVersion).
type Int int

// UnmarshalJSON accepts 1, 1.0 is refused, and "1".
func (i *Int) UnmarshalJSON(b []byte) error {
	var t Text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	if t == "" {
		*i = 0
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(t)))
	if err != nil {
		return fmt.Errorf("want an integer, got %q", string(t))
	}
	*i = Int(n)
	return nil
}

// Decimal is an amount in major units as decimal text ("10.99"), so it
// never passes through a float. It is written as a JSON number and read
// from a number or a string.
type Decimal string

// MarshalJSON writes the decimal as a JSON number.
func (d Decimal) MarshalJSON() ([]byte, error) {
	if !validDecimal(string(d)) {
		return nil, fmt.Errorf("nexo: %q is not a decimal", string(d))
	}
	return []byte(d), nil
}

// UnmarshalJSON accepts a number or a string holding one.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	var t Text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	s := strings.TrimSpace(string(t))
	if s != "" && !validDecimal(s) {
		return fmt.Errorf("want a decimal amount, got %q", s)
	}
	*d = Decimal(s)
	return nil
}

// validDecimal accepts an optional minus, digits, and an optional
// fraction: what Minor can convert exactly (no exponent form).
func validDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") {
		return false
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// FormatMinor renders minor units as the major-unit decimal for a
// currency with exp fraction digits: FormatMinor(1099, 2) = "10.99",
// FormatMinor(5, 2) = "0.05", FormatMinor(500, 0) = "500".
func FormatMinor(minor int64, exp int) Decimal {
	sign := ""
	u := uint64(minor)
	if minor < 0 {
		sign, u = "-", uint64(-minor)
	}
	s := strconv.FormatUint(u, 10)
	if exp == 0 {
		return Decimal(sign + s)
	}
	if len(s) <= exp {
		s = strings.Repeat("0", exp-len(s)+1) + s
	}
	return Decimal(sign + s[:len(s)-exp] + "." + s[len(s)-exp:])
}

// Minor converts d to minor units of a currency with exp fraction digits.
// It refuses a value with more significant fraction digits than exp, or
// one that does not fit in an int64.
func (d Decimal) Minor(exp int) (int64, error) {
	s := string(d)
	if !validDecimal(s) {
		return 0, fmt.Errorf("nexo: %q is not a decimal", s)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	frac = strings.TrimRight(frac, "0")
	if len(frac) > exp {
		return 0, fmt.Errorf("nexo: %q has more than %d fraction digits", string(d), exp)
	}
	frac += strings.Repeat("0", exp-len(frac))
	digits := strings.TrimLeft(whole+frac, "0")
	if digits == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("nexo: amount %q out of range", string(d))
	}
	if neg {
		n = -n
	}
	return n, nil
}

// Exponent is the number of minor-unit digits of an ISO 4217 currency
// (2 unless listed).
func Exponent(currency string) int {
	switch currency {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	}
	return 2
}
