package zvt

import "fmt"

// TLV is one BER-TLV object from a BMP 06 container. Tag holds the raw
// tag bytes as a number (0x1F07 for the two-byte tag 1F 07).
type TLV struct {
	Tag   uint32
	Value []byte
}

// TLV tags posgate uses (PA00P015 §9).
const (
	TagTextLine       = 0x07
	TagAttribute      = 0x09
	TagPermittedCmds  = 0x26
	TagPrintTexts     = 0x25
	TagReceiptType    = 0x1F07
	TagExtErrorCode   = 0x1F16
	TagExtErrorText   = 0x1F17
	TagReceiptNumSync = 0x1F1F
)

// Constructed reports whether the value holds nested TLV objects (bit 6
// of the first tag byte).
func (t TLV) Constructed() bool {
	first := t.Tag
	for first > 0xFF {
		first >>= 8
	}
	return first&0x20 != 0
}

// DecodeTLV reads one TLV object from the start of b. Lengths are BER: one
// byte below 0x80, 81 xx, or 82 hi lo (big-endian, unlike the APDU length).
func DecodeTLV(b []byte) (TLV, []byte, error) {
	if len(b) == 0 {
		return TLV{}, b, ErrIncomplete
	}
	i := 0
	tag := uint32(b[0])
	i++
	if b[0]&0x1F == 0x1F { // multi-byte tag: more bytes while bit 8 is set
		for {
			if i >= len(b) {
				return TLV{}, b, ErrIncomplete
			}
			if i >= 4 {
				return TLV{}, b, fmt.Errorf("%w: tag longer than 4 bytes", ErrBadValue)
			}
			tag = tag<<8 | uint32(b[i])
			i++
			if b[i-1]&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return TLV{}, b, ErrIncomplete
	}
	n := int(b[i])
	i++
	switch {
	case n < 0x80:
	case n == 0x81:
		if i >= len(b) {
			return TLV{}, b, ErrIncomplete
		}
		n = int(b[i])
		i++
	case n == 0x82:
		if i+1 >= len(b) {
			return TLV{}, b, ErrIncomplete
		}
		n = int(b[i])<<8 | int(b[i+1])
		i += 2
	default:
		return TLV{}, b, fmt.Errorf("%w: tlv length byte %02X", ErrBadValue, n)
	}
	if len(b)-i < n {
		return TLV{}, b, ErrIncomplete
	}
	return TLV{Tag: tag, Value: append([]byte{}, b[i:i+n]...)}, b[i+n:], nil
}

// DecodeTLVs reads TLV objects until b is used up.
func DecodeTLVs(b []byte) ([]TLV, error) {
	var out []TLV
	for len(b) > 0 {
		t, rest, err := DecodeTLV(b)
		if err != nil {
			return out, err
		}
		out = append(out, t)
		b = rest
	}
	return out, nil
}

// AppendTLV appends t with the shortest BER length.
func AppendTLV(dst []byte, t TLV) []byte {
	var tag [4]byte
	k := 0
	for v := t.Tag; ; v >>= 8 {
		tag[k] = byte(v)
		k++
		if v <= 0xFF {
			break
		}
	}
	for j := k - 1; j >= 0; j-- {
		dst = append(dst, tag[j])
	}
	switch n := len(t.Value); {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xFF:
		dst = append(dst, 0x81, byte(n))
	default:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	}
	return append(dst, t.Value...)
}

// find returns the first object with tag, searching nested constructed
// objects too.
func findTLV(ts []TLV, tag uint32) (TLV, bool) {
	for _, t := range ts {
		if t.Tag == tag {
			return t, true
		}
		if t.Constructed() {
			if inner, err := DecodeTLVs(t.Value); err == nil {
				if f, ok := findTLV(inner, tag); ok {
					return f, true
				}
			}
		}
	}
	return TLV{}, false
}
