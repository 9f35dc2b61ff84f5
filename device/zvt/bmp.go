package zvt

import "fmt"

// Field is one BMP-tagged field of a data block. Value excludes the BMP
// byte and, for LLVAR/LLLVAR fields, the length prefix; for BMP 06 it is
// the TLV container's content, without its BER length.
type Field struct {
	BMP   byte
	Value []byte
}

// bmpFormat says how long a BMP's value is: a fixed size, an LLVAR (Fx Fy)
// or LLLVAR (Fx Fy Fz) prefix, or a BER length (BMP 06).
type bmpFormat struct {
	name string
	size int // > 0 fixed; llvar, lllvar or ber
}

const (
	llvar  = -2
	lllvar = -3
	ber    = -1
)

// bmps is the BMP table (PA00P015 §13). The length of a BMP's value is
// implied by its number, so a BMP missing here stops the parser: guessing
// would desync everything after it.
var bmps = map[byte]bmpFormat{
	0x01: {"timeout", 1},
	0x02: {"max-status-infos", 1},
	0x03: {"service-byte", 1},
	0x04: {"amount", 6},
	0x05: {"pump", 1},
	0x06: {"tlv", ber},
	0x0B: {"trace", 3},
	0x0C: {"time", 3},
	0x0D: {"date", 2},
	0x0E: {"expiry", 2},
	0x17: {"card-seq", 2},
	0x19: {"type", 1},
	0x22: {"pan", llvar},
	0x23: {"track2", llvar},
	0x24: {"track3", lllvar},
	0x27: {"result", 1},
	0x29: {"tid", 4},
	0x2A: {"vu", 15},
	0x2D: {"track1", llvar},
	0x2E: {"sync-chip", lllvar},
	0x37: {"orig-trace", 3},
	0x3A: {"cvv", 2},
	0x3B: {"aid", 8},
	0x3C: {"additional", lllvar},
	0x3D: {"password", 3},
	0x49: {"currency", 2},
	0x60: {"totals", lllvar},
	0x87: {"receipt", 2},
	0x88: {"turnover", 3},
	0x8A: {"card-type", 1},
	0x8B: {"card-name", llvar},
	0x8C: {"card-type-id", 1},
	0x92: {"ec-cash-data", lllvar},
	0x9A: {"geldkarte-data", lllvar},
	0xA0: {"result-as", 1},
	0xA7: {"chip-ef-id", llvar},
	0xAA: {"date-yymmdd", 3},
	0xAF: {"ef-info", lllvar},
	0xBA: {"aid-param", 5},
	0xD0: {"algo-key", 1},
	0xD1: {"offset", llvar},
	0xD2: {"direction", 1},
	0xD3: {"key-position", 1},
	0xE0: {"min-len", 1},
	0xE1: {"text1", llvar},
	0xE2: {"text2", llvar},
	0xE3: {"text3", llvar},
	0xE4: {"text4", llvar},
	0xE5: {"text5", llvar},
	0xE6: {"text6", llvar},
	0xE7: {"text7", llvar},
	0xE8: {"text8", llvar},
	0xE9: {"max-len", 1},
	0xEA: {"echo", 1},
	0xEB: {"mac", 8},
	0xF0: {"display-duration", 1},
	0xF1: {"line1", llvar},
	0xF2: {"line2", llvar},
	0xF3: {"line3", llvar},
	0xF4: {"line4", llvar},
	0xF5: {"line5", llvar},
	0xF6: {"line6", llvar},
	0xF7: {"line7", llvar},
	0xF8: {"line8", llvar},
	0xF9: {"beeps", 1},
	0xFA: {"status", 1},
	0xFB: {"ok-required", 1},
	0xFC: {"dialog", 1},
}

// BMPName returns the table name of a BMP, or its hex number.
func BMPName(b byte) string {
	if f, ok := bmps[b]; ok {
		return f.name
	}
	return fmt.Sprintf("%02X", b)
}

// DecodeField reads one BMP field from the start of b.
func DecodeField(b []byte) (Field, []byte, error) {
	if len(b) == 0 {
		return Field{}, b, ErrIncomplete
	}
	f, ok := bmps[b[0]]
	if !ok {
		return Field{}, b, fmt.Errorf("%w %02X", ErrUnknownBMP, b[0])
	}
	i, n := 1, f.size
	switch f.size {
	case llvar, lllvar:
		digits := -f.size
		if len(b) < 1+digits {
			return Field{}, b, ErrIncomplete
		}
		n = 0
		for _, d := range b[1 : 1+digits] {
			if d&0xF0 != 0xF0 || d&0x0F > 9 {
				return Field{}, b, fmt.Errorf("%w: bmp %02X length % X", ErrBadValue, b[0], b[1:1+digits])
			}
			n = n*10 + int(d&0x0F)
		}
		i += digits
	case ber:
		t, _, err := DecodeTLV(append([]byte{0x06}, b[1:]...))
		if err != nil {
			return Field{}, b, err
		}
		n = len(t.Value)
		i = 1 + berLen(b[1:])
	}
	if len(b)-i < n {
		return Field{}, b, ErrIncomplete
	}
	return Field{BMP: b[0], Value: append([]byte{}, b[i:i+n]...)}, b[i+n:], nil
}

// berLen returns how many bytes the BER length at the start of b takes;
// the caller has checked that it is well formed.
func berLen(b []byte) int {
	switch b[0] {
	case 0x81:
		return 2
	case 0x82:
		return 3
	default:
		return 1
	}
}

// DecodeFields reads BMP fields until b is used up.
func DecodeFields(b []byte) ([]Field, error) {
	var out []Field
	for len(b) > 0 {
		f, rest, err := DecodeField(b)
		if err != nil {
			return out, err
		}
		out = append(out, f)
		b = rest
	}
	return out, nil
}

// AppendField appends f in the format its BMP requires. A BMP missing from
// the table, a value of the wrong size for a fixed BMP, or one too long for
// its LLVAR (99) or LLLVAR (999) prefix is a programmer error and panics.
func AppendField(dst []byte, f Field) []byte {
	form, ok := bmps[f.BMP]
	if !ok {
		panic(fmt.Sprintf("zvt: AppendField: unknown bmp %02X", f.BMP))
	}
	switch form.size {
	case llvar:
		n := len(f.Value)
		if n > 99 {
			panic(fmt.Sprintf("zvt: AppendField: bmp %02X is LLVAR, %d bytes", f.BMP, n))
		}
		return append(append(dst, f.BMP, 0xF0|byte(n/10%10), 0xF0|byte(n%10)), f.Value...)
	case lllvar:
		n := len(f.Value)
		if n > 999 {
			panic(fmt.Sprintf("zvt: AppendField: bmp %02X is LLLVAR, %d bytes", f.BMP, n))
		}
		return append(append(dst, f.BMP, 0xF0|byte(n/100%10), 0xF0|byte(n/10%10), 0xF0|byte(n%10)), f.Value...)
	case ber:
		return AppendTLV(dst, TLV{Tag: 0x06, Value: f.Value})
	default:
		if len(f.Value) != form.size {
			panic(fmt.Sprintf("zvt: AppendField: bmp %02X wants %d bytes, got %d", f.BMP, form.size, len(f.Value)))
		}
		return append(append(dst, f.BMP), f.Value...)
	}
}

// AppendFields appends every field.
func AppendFields(dst []byte, fs []Field) []byte {
	for _, f := range fs {
		dst = AppendField(dst, f)
	}
	return dst
}

// fieldMap indexes fields by BMP (the first wins).
func fieldMap(fs []Field) map[byte][]byte {
	m := make(map[byte][]byte, len(fs))
	for _, f := range fs {
		if _, dup := m[f.BMP]; !dup {
			m[f.BMP] = f.Value
		}
	}
	return m
}
