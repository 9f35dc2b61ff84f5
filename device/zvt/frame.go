package zvt

import (
	"errors"
	"fmt"
)

// Transport control bytes (PA00P016 §1.2).
const (
	STX = 0x02
	ETX = 0x03
	ACK = 0x06
	DLE = 0x10
	NAK = 0x15
)

// Sentinel errors of the codecs and transports.
var (
	// ErrIncomplete means the input ends before the frame, APDU or field does.
	ErrIncomplete = errors.New("zvt: incomplete")
	// ErrFrame is a serial frame that does not start with DLE STX or has a
	// DLE followed by anything but DLE or ETX.
	ErrFrame = errors.New("zvt: bad frame")
	// ErrCRC is a serial frame whose checksum does not match.
	ErrCRC = errors.New("zvt: crc mismatch")
	// ErrUnknownBMP is a BMP missing from the table: its length is unknown,
	// so the rest of the data block cannot be parsed.
	ErrUnknownBMP = errors.New("zvt: unknown bmp")
	// ErrBadValue is a malformed field (BCD digit out of range, bad length).
	ErrBadValue = errors.New("zvt: bad value")
	// ErrNoAck means the other side did not acknowledge a frame after three
	// tries (NAK or T2), a transmission error in the spec's words.
	ErrNoAck = errors.New("zvt: frame not acknowledged")
	// ErrTooManyNAKs means three frames in a row arrived corrupted.
	ErrTooManyNAKs = errors.New("zvt: three corrupted frames")
)

var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0x8408
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// CRC returns the CRC-16/KERMIT of b (reflected 0x1021, init 0, no final
// XOR). The spec's text says "CRC-XModem", but terminals send KERMIT: it
// reproduces a real Ingenico i5310 trace (research/payment-protocols.md §1.4).
func CRC(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = crcTable[byte(c)^x] ^ c>>8
	}
	return c
}

// EncodeFrame wraps an APDU for the serial line: DLE STX, the APDU with
// every DLE doubled, DLE ETX, then the CRC over APDU+ETX, low byte first.
// The CRC bytes are not stuffed.
func EncodeFrame(apdu []byte) []byte {
	out := make([]byte, 0, len(apdu)+8)
	out = append(out, DLE, STX)
	for _, b := range apdu {
		if b == DLE {
			out = append(out, DLE)
		}
		out = append(out, b)
	}
	c := crcUpdate(CRC(apdu), ETX)
	return append(out, DLE, ETX, byte(c), byte(c>>8))
}

func crcUpdate(c uint16, b byte) uint16 { return crcTable[byte(c)^b] ^ c>>8 }

// DecodeFrame reads one serial frame from the start of b and returns its
// APDU bytes and what follows the frame. It returns ErrIncomplete if b ends
// first; ErrFrame (rest starts after the offending byte) if b does not
// start with DLE STX or holds a DLE followed by neither DLE nor ETX (a
// DLE STX inside a frame leaves rest at that new frame); and
// ErrCRC (rest after the whole frame) on a checksum mismatch.
func DecodeFrame(b []byte) (apdu, rest []byte, err error) {
	if len(b) < 2 {
		if len(b) == 1 && b[0] != DLE {
			return nil, b[1:], fmt.Errorf("%w: starts with %02X", ErrFrame, b[0])
		}
		return nil, b, ErrIncomplete
	}
	if b[0] != DLE || b[1] != STX {
		return nil, b[1:], fmt.Errorf("%w: starts with %02X %02X", ErrFrame, b[0], b[1])
	}
	for i := 2; i < len(b); i++ {
		if b[i] != DLE {
			apdu = append(apdu, b[i])
			continue
		}
		if i+1 >= len(b) {
			return nil, b, ErrIncomplete
		}
		i++
		switch b[i] {
		case DLE:
			apdu = append(apdu, DLE)
		case ETX:
			if i+2 >= len(b) {
				return nil, b, ErrIncomplete
			}
			want := crcUpdate(CRC(apdu), ETX)
			got := uint16(b[i+1]) | uint16(b[i+2])<<8
			if got != want {
				return nil, b[i+3:], fmt.Errorf("%w: got %04X, want %04X", ErrCRC, got, want)
			}
			if apdu == nil {
				apdu = []byte{}
			}
			return apdu, b[i+3:], nil
		case STX: // a new frame starts: the sender gave up on this one
			return nil, b[i-1:], fmt.Errorf("%w: DLE STX inside a frame", ErrFrame)
		default:
			return nil, b[i+1:], fmt.Errorf("%w: DLE %02X", ErrFrame, b[i])
		}
	}
	return nil, b, ErrIncomplete
}
