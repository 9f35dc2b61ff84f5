package datecs

import (
	"errors"
	"fmt"
)

// Control bytes of the Datecs ISL and X protocols (X spec pp.3-4).
const (
	pre = 0x01 // start of a frame
	etx = 0x03 // end of a frame
	sep = 0x04 // separates DATA from STATUS in an answer
	pst = 0x05 // ends the part covered by LEN and BCC
	nak = 0x15 // printer: bad checksum or format, send the same frame again
	syn = 0x16 // printer: still executing, keep waiting

	escape = 0x10 // X: a DATA byte below 0x20 travels as escape, byte+0x40
	tab    = 0x09 // X: terminates every parameter

	// MaxData is the longest DATA field: 213 bytes host→printer and 218
	// printer→host in the X spec; the framer accepts 218 both ways and the
	// command builders keep requests within 213.
	MaxData = 218
)

// Frame errors. Decode returns them wrapped with what was wrong.
var (
	// ErrIncomplete means the buffer holds the start of a frame but not
	// all of it yet; read more and call Decode again.
	ErrIncomplete = errors.New("incomplete frame")
	// ErrMalformed means the bytes are not a frame of the profile.
	ErrMalformed = errors.New("malformed frame")
	// ErrChecksum means the frame is complete but its BCC does not match.
	ErrChecksum = errors.New("frame checksum mismatch")
)

// Profile is the width profile of the framer. The old ISL protocol
// (FP-2000, DP-25, DP-150) and the X protocol (FP-700X, DP-25X …) share
// PRE/SEQ/PST/BCC/ETX, NAK/SYN and timing and differ in field widths
// (research/fiscal.md §2.2).
type Profile struct {
	Name      string
	Wide      bool // LEN and CMD as four offset nibbles (X) instead of one byte (ISL)
	StatusLen int  // status bytes in an answer: 8 (X) or 6 (ISL)
	SeqMax    byte // SEQ runs 0x20…SeqMax
	Escape    bool // DATA bytes below 0x20 are escaped (X)
}

// The two profiles.
var (
	X   = Profile{Name: "datecs-x", Wide: true, StatusLen: 8, SeqMax: 0xFF, Escape: true}
	ISL = Profile{Name: "datecs-isl", Wide: false, StatusLen: 6, SeqMax: 0x7F}
)

// Msg is one frame: a request when Status is nil, an answer otherwise.
// Data is the DATA field as it travels, escapes and separators included;
// see Params and Fields for the parameters in it.
type Msg struct {
	Seq    byte
	Cmd    uint16
	Data   []byte
	Status []byte
}

// IsAnswer reports whether m is a printer's answer.
func (m Msg) IsAnswer() bool { return m.Status != nil }

// lenWidth and cmdWidth are the sizes of LEN and CMD on the wire.
func (p Profile) lenWidth() int {
	if p.Wide {
		return 4
	}
	return 1
}

// headLen is the size of LEN+SEQ+CMD.
func (p Profile) headLen() int { return 2*p.lenWidth() + 1 }

// Encode returns the frame for m. It fails if a field does not fit the profile.
func (p Profile) Encode(m Msg) ([]byte, error) {
	return p.AppendEncode(nil, m)
}

// AppendEncode appends the frame for m to dst.
func (p Profile) AppendEncode(dst []byte, m Msg) ([]byte, error) {
	if m.Seq < 0x20 || m.Seq > p.SeqMax {
		return dst, fmt.Errorf("encode: SEQ %02X outside 20…%02X", m.Seq, p.SeqMax)
	}
	if !p.Wide && m.Cmd > 0xFF {
		return dst, fmt.Errorf("encode: CMD %X does not fit one byte", m.Cmd)
	}
	if len(m.Data) > MaxData {
		return dst, fmt.Errorf("encode: %d data bytes, max %d", len(m.Data), MaxData)
	}
	for _, b := range m.Data {
		if b == sep || b == pst {
			return dst, fmt.Errorf("encode: control byte %02X in data", b)
		}
	}
	if m.Status != nil {
		if len(m.Status) != p.StatusLen {
			return dst, fmt.Errorf("encode: %d status bytes, want %d", len(m.Status), p.StatusLen)
		}
		for _, b := range m.Status {
			if b < 0x80 {
				return dst, fmt.Errorf("encode: status byte %02X without bit 7", b)
			}
		}
	}
	// n counts the bytes after PRE up to and including PST.
	n := p.headLen() + len(m.Data) + 1
	if m.Status != nil {
		n += 1 + len(m.Status)
	}
	if !p.Wide && n+0x20 > 0xFF {
		return dst, fmt.Errorf("encode: frame too long for a one-byte LEN")
	}
	start := len(dst)
	dst = append(dst, pre)
	dst = p.appendWord(dst, uint16(n+0x20))
	dst = append(dst, m.Seq)
	dst = p.appendWord(dst, m.Cmd)
	dst = append(dst, m.Data...)
	if m.Status != nil {
		dst = append(dst, sep)
		dst = append(dst, m.Status...)
	}
	dst = append(dst, pst)
	dst = appendNibbles(dst, bcc(dst[start+1:]))
	return append(dst, etx), nil
}

// Decode reads one frame from the start of b, which must begin with PRE.
// It returns the frame and the bytes after it. On ErrIncomplete, rest is b;
// on ErrMalformed, rest is b without its first byte (so a reader can look
// for the next PRE); on ErrChecksum, rest is what follows the bad frame.
// Decode never returns a rest longer than b.
func (p Profile) Decode(b []byte) (m Msg, rest []byte, err error) {
	if len(b) == 0 {
		return Msg{}, b, ErrIncomplete
	}
	if b[0] != pre {
		return Msg{}, b[1:], fmt.Errorf("%w: starts with %02X, not PRE", ErrMalformed, b[0])
	}
	lw := p.lenWidth()
	if len(b) < 1+lw {
		return Msg{}, b, ErrIncomplete
	}
	l, ok := p.word(b[1 : 1+lw])
	if !ok {
		return Msg{}, b[1:], fmt.Errorf("%w: bad LEN % X", ErrMalformed, b[1:1+lw])
	}
	n := int(l) - 0x20 // bytes after PRE up to and including PST
	maxN := p.headLen() + MaxData + 2 + p.StatusLen
	if n < p.headLen()+1 || n > maxN {
		return Msg{}, b[1:], fmt.Errorf("%w: LEN %d out of range", ErrMalformed, n)
	}
	total := 1 + n + 4 + 1
	if len(b) < total {
		return Msg{}, b, ErrIncomplete
	}
	body := b[1 : 1+n]
	if body[n-1] != pst {
		return Msg{}, b[1:], fmt.Errorf("%w: no PST at end of LEN", ErrMalformed)
	}
	if b[total-1] != etx {
		return Msg{}, b[1:], fmt.Errorf("%w: no ETX", ErrMalformed)
	}
	sum, ok := p.nibbles(b[1+n : 1+n+4])
	if !ok {
		return Msg{}, b[1:], fmt.Errorf("%w: bad BCC % X", ErrMalformed, b[1+n:1+n+4])
	}
	if got := bcc(body); got != sum {
		return Msg{}, b[total:], fmt.Errorf("%w: got %04X, frame says %04X", ErrChecksum, got, sum)
	}
	m.Seq = body[lw]
	if m.Seq < 0x20 || m.Seq > p.SeqMax {
		return Msg{}, b[1:], fmt.Errorf("%w: SEQ %02X", ErrMalformed, m.Seq)
	}
	cmd, ok := p.word(body[lw+1 : p.headLen()])
	if !ok {
		return Msg{}, b[1:], fmt.Errorf("%w: bad CMD", ErrMalformed)
	}
	m.Cmd = cmd
	data := body[p.headLen() : n-1]
	// An answer ends in SEP and the status bytes. SEP cannot occur in a
	// request's DATA, which escapes (X) or never carries (ISL) such bytes.
	if s := len(data) - p.StatusLen - 1; s >= 0 && data[s] == sep {
		m.Status = append([]byte{}, data[s+1:]...)
		data = data[:s]
	}
	for _, c := range data {
		if c == sep || c == pst {
			return Msg{}, b[1:], fmt.Errorf("%w: control byte %02X in data", ErrMalformed, c)
		}
	}
	for _, c := range m.Status {
		if c < 0x80 {
			return Msg{}, b[1:], fmt.Errorf("%w: status byte %02X", ErrMalformed, c)
		}
	}
	if len(data) > MaxData {
		return Msg{}, b[1:], fmt.Errorf("%w: %d data bytes", ErrMalformed, len(data))
	}
	m.Data = append([]byte{}, data...)
	return m, b[total:], nil
}

// appendWord appends LEN or CMD: four nibbles (X) or one byte (ISL).
func (p Profile) appendWord(dst []byte, v uint16) []byte {
	if p.Wide {
		return appendNibbles(dst, v)
	}
	return append(dst, byte(v))
}

// word reads LEN or CMD.
func (p Profile) word(b []byte) (uint16, bool) {
	if p.Wide {
		return p.nibbles(b)
	}
	return uint16(b[0]), true
}

// nibbles reads four offset nibbles: each byte is 0x30 + four bits.
func (Profile) nibbles(b []byte) (uint16, bool) {
	var v uint16
	for _, c := range b {
		if c < 0x30 || c > 0x3F {
			return 0, false
		}
		v = v<<4 | uint16(c-0x30)
	}
	return v, true
}

func appendNibbles(dst []byte, v uint16) []byte {
	return append(dst, 0x30+byte(v>>12&0xF), 0x30+byte(v>>8&0xF), 0x30+byte(v>>4&0xF), 0x30+byte(v&0xF))
}

// bcc is the 16-bit sum of the bytes after PRE up to and including PST.
func bcc(b []byte) uint16 {
	var s uint16
	for _, c := range b {
		s += uint16(c)
	}
	return s
}

// Encode encodes m with the X profile.
func Encode(m Msg) ([]byte, error) { return X.Encode(m) }

// Decode decodes a frame of the X profile.
func Decode(b []byte) (Msg, []byte, error) { return X.Decode(b) }
