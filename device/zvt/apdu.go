package zvt

import "fmt"

// APDU is one application message: a command (CLASS INSTR) or a response
// (80 00 positive, 84 xx negative) and its data block.
type APDU struct {
	Class, Instr byte
	Data         []byte
}

// Command returns CLASS<<8 | INSTR, e.g. 0x0601 for Authorization.
func (a APDU) Command() uint16 { return uint16(a.Class)<<8 | uint16(a.Instr) }

// Encode returns the APDU bytes. A data block of 255 bytes or more gets the
// extended length FF lo hi (little-endian, PA00P016 §5.2); it must stay
// within 65535 bytes, which every ZVT message does.
func (a APDU) Encode() []byte { return a.Append(nil) }

// Append appends the encoded APDU to dst.
func (a APDU) Append(dst []byte) []byte {
	dst = append(dst, a.Class, a.Instr)
	if n := len(a.Data); n < 0xFF {
		dst = append(dst, byte(n))
	} else {
		dst = append(dst, 0xFF, byte(n), byte(n>>8))
	}
	return append(dst, a.Data...)
}

// DecodeAPDU reads one APDU from the start of b and returns what follows.
// The data block is copied.
func DecodeAPDU(b []byte) (APDU, []byte, error) {
	if len(b) < 3 {
		return APDU{}, b, ErrIncomplete
	}
	a := APDU{Class: b[0], Instr: b[1]}
	n, hdr := int(b[2]), 3
	if b[2] == 0xFF {
		if len(b) < 5 {
			return APDU{}, b, ErrIncomplete
		}
		n, hdr = int(b[3])|int(b[4])<<8, 5
	}
	if len(b) < hdr+n {
		return APDU{}, b, ErrIncomplete
	}
	a.Data = append([]byte{}, b[hdr:hdr+n]...)
	return a, b[hdr+n:], nil
}

// apduLen reports how many bytes the APDU at the start of b takes, or
// ErrIncomplete if the header is not all there yet.
func apduLen(b []byte) (int, error) {
	switch {
	case len(b) < 3:
		return 0, ErrIncomplete
	case b[2] != 0xFF:
		return 3 + int(b[2]), nil
	case len(b) < 5:
		return 0, ErrIncomplete
	default:
		return 5 + (int(b[3]) | int(b[4])<<8), nil
	}
}

// IsAck reports a positive response: 80 00, or 84 00, which the spec also
// counts as positive.
func (a APDU) IsAck() bool {
	return (a.Class == 0x80 || a.Class == 0x84) && a.Instr == 0x00
}

// IsNack reports a negative response 84 xx with xx ≠ 00.
func (a APDU) IsNack() bool { return a.Class == 0x84 && a.Instr != 0x00 }

func (a APDU) String() string { return fmt.Sprintf("%02X %02X", a.Class, a.Instr) }
