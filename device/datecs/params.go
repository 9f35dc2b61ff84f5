package datecs

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// Datecs printers with Bulgarian firmware take and return text in CP1251
// (ErpNet.FP Drivers/BgFiscalPrinter.cs). A rune CP1251 lacks is printed as '?'.
var (
	cp1251Enc = encoding.ReplaceUnsupported(charmap.Windows1251.NewEncoder())
	cp1251Dec = charmap.Windows1251.NewDecoder()
)

// Params builds an X-protocol DATA field: each parameter in CP1251, bytes
// below 0x20 escaped, and a TAB after every parameter, the last one included.
func Params(fields ...string) []byte {
	var b []byte
	for _, f := range fields {
		b = appendEscaped(b, toCP1251(f))
		b = append(b, tab)
	}
	return b
}

// Fields splits an X-protocol DATA field into its parameters, undoing the
// escapes and decoding CP1251. The TAB after the last parameter is optional.
func Fields(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	data = bytes.TrimSuffix(data, []byte{tab})
	parts := bytes.Split(data, []byte{tab})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = fromCP1251(unescape(p))
	}
	return out
}

func appendEscaped(dst, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 {
			dst = append(dst, escape, c+0x40)
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func unescape(s []byte) []byte {
	if bytes.IndexByte(s, escape) < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == escape && i+1 < len(s) {
			i++
			out = append(out, s[i]-0x40)
			continue
		}
		out = append(out, s[i])
	}
	return out
}

func toCP1251(s string) []byte {
	b, err := cp1251Enc.Bytes([]byte(s))
	if err != nil {
		// ReplaceUnsupported leaves only invalid UTF-8 as an error.
		return []byte(strings.ToValidUTF8(s, "?"))
	}
	return b
}

func fromCP1251(b []byte) string {
	s, err := cp1251Dec.Bytes(b)
	if err != nil {
		return string(b)
	}
	return string(s)
}

// FormatAmount formats minor units with two decimals: 1200 → "12.00".
func FormatAmount(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// FormatQty formats thousandths with as few decimals as needed: 2000 → "2",
// 1500 → "1.5".
func FormatQty(v int64) string {
	s := fmt.Sprintf("%d.%03d", v/1000, v%1000)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// parseDecimal parses a decimal number into an integer scaled by 10^places,
// rounding half away from zero. "" parses as 0.
func parseDecimal(s string, places int) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	neg := false
	switch s[0] {
	case '-':
		neg, s = true, s[1:]
	case '+':
		s = s[1:]
	}
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" && fp == "" {
		return 0, fmt.Errorf("parse number %q: empty", s)
	}
	var v int64
	for _, c := range ip {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("parse number %q: bad digit", s)
		}
		v = v*10 + int64(c-'0')
		if v > 1e15 {
			return 0, fmt.Errorf("parse number %q: too large", s)
		}
	}
	round := false
	for i := 0; i < places || (i == places && i < len(fp)); i++ {
		d := int64(0)
		if i < len(fp) {
			c := fp[i]
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("parse number %q: bad digit", s)
			}
			d = int64(c - '0')
		}
		if i == places {
			round = d >= 5
			break
		}
		v = v*10 + d
	}
	for i := places + 1; i < len(fp); i++ {
		if fp[i] < '0' || fp[i] > '9' {
			return 0, fmt.Errorf("parse number %q: bad digit", s)
		}
	}
	if round {
		v++
	}
	if neg {
		v = -v
	}
	return v, nil
}

// ParseAmount parses "12.00" into minor units.
func ParseAmount(s string) (int64, error) { return parseDecimal(s, 2) }

// ParseQty parses "1.5" into thousandths.
func ParseQty(s string) (int64, error) { return parseDecimal(s, 3) }

func atoi(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("parse integer %q: %w", s, err)
	}
	return n, nil
}
