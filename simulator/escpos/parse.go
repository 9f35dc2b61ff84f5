package escpos

import "errors"

// Parse errors.
var (
	// ErrIncomplete means b ends inside a command; call Parse again with
	// more bytes.
	ErrIncomplete = errors.New("incomplete command")
	// ErrTooLong means a command announces more parameter bytes than the
	// simulator buffers (MaxCommand); its first byte is skipped.
	ErrTooLong = errors.New("command too long")
)

// MaxCommand bounds the bytes of one command the parser waits for: a
// GS ( k store of the largest QR symbol is 7,094 bytes; raster images
// beyond this are skipped.
const MaxCommand = 1 << 16

// Kind is the kind of a parsed command.
type Kind int

// Command kinds. Every byte of the stream belongs to exactly one Op.
const (
	Text            Kind = iota // printable bytes (Data), in the current code table
	LineFeed                    // LF: print the line
	Init                        // ESC @
	CodeTable                   // ESC t n
	Bold                        // ESC E n
	Justify                     // ESC a n
	CharSize                    // GS ! n
	PrintMode                   // ESC ! n (font, emphasis, double height/width, underline)
	FeedLines                   // ESC d n
	Cut                         // GS V m [n]
	RealtimeStatus              // DLE EOT n
	RealtimeRequest             // DLE ENQ n, DLE DC4 …
	ASB                         // GS a n
	TransmitStatus              // GS r n
	QR                          // GS ( k with cn = 49: Fn and Data (the parameters after fn)
	Ignored                     // a known command the simulator does not act on
	Unknown                     // an unknown ESC/GS/FS sequence (its first two bytes)
	Control                     // another control byte (CR, HT, NUL …)
)

// Op is one command of the stream.
type Op struct {
	Kind Kind
	N    byte   // the parameter n (ESC t n, GS ! n, DLE EOT n, GS V m …)
	M    byte   // a second parameter (GS V m n: n)
	Fn   byte   // GS ( k: fn
	Data []byte // Text: the bytes; QR: the parameters after fn
	Raw  []byte // every byte of the command, as received
}

// Parse decodes the first command of b and returns it with the rest of
// b. With ErrIncomplete, rest is b; with ErrTooLong, rest is b[1:].
// Command lengths are those of the ESC/POS reference.
func Parse(b []byte) (op Op, rest []byte, err error) {
	if len(b) == 0 {
		return Op{}, b, ErrIncomplete
	}
	take := func(k Kind, n int) (Op, []byte, error) {
		if n > MaxCommand {
			return Op{}, b[1:], ErrTooLong
		}
		if len(b) < n {
			return Op{}, b, ErrIncomplete
		}
		op := Op{Kind: k, Raw: b[:n:n]}
		if n >= 3 {
			op.N = b[2]
		}
		if n >= 4 {
			op.M = b[3]
		}
		return op, b[n:], nil
	}
	c := b[0]
	switch {
	case c >= 0x20 && c != 0x7F || c >= 0x80:
		i := 0
		for i < len(b) && (b[i] >= 0x20 && b[i] != 0x7F || b[i] >= 0x80) {
			i++
		}
		return Op{Kind: Text, Data: b[:i:i], Raw: b[:i:i]}, b[i:], nil
	case c == 0x0A:
		return Op{Kind: LineFeed, Raw: b[:1:1]}, b[1:], nil
	case c == 0x10:
		return parseDLE(b, take)
	case c == 0x1B:
		return parseESC(b, take)
	case c == 0x1D:
		return parseGS(b, take)
	case c == 0x1C:
		return parseFS(b, take)
	}
	return Op{Kind: Control, N: c, Raw: b[:1:1]}, b[1:], nil
}

type taker func(k Kind, n int) (Op, []byte, error)

func parseDLE(b []byte, take taker) (Op, []byte, error) {
	if len(b) < 2 {
		return Op{}, b, ErrIncomplete
	}
	switch b[1] {
	case 0x04:
		return take(RealtimeStatus, 3)
	case 0x05:
		return take(RealtimeRequest, 3)
	case 0x14: // DLE DC4 fn …: fn 1 (pulse) and 2 (power off) take two more
		if len(b) < 3 {
			return Op{}, b, ErrIncomplete
		}
		return take(RealtimeRequest, 5)
	}
	return take(Control, 1)
}

// escArgs is the number of parameter bytes of the fixed-length ESC
// commands ("ESC/POS Command Reference", one section per command).
var escArgs = map[byte]int{
	'@': 0, 't': 1, 'E': 1, 'a': 1, 'd': 1, '!': 1, '-': 1, 'M': 1, '2': 0, '3': 1,
	'J': 1, 'G': 1, 'R': 1, 'r': 1, 'V': 1, '{': 1, ' ': 1, 'U': 1, 'L': 0, 'S': 0,
	'T': 1, '$': 2, '\\': 2, 'e': 1, 'i': 0, 'm': 0, 'p': 3, 'c': 2, '=': 1, 'K': 1,
}

func parseESC(b []byte, take taker) (Op, []byte, error) {
	if len(b) < 2 {
		return Op{}, b, ErrIncomplete
	}
	n, ok := escArgs[b[1]]
	if !ok {
		if b[1] == 'D' { // ESC D n1 … NUL: tab positions
			for i := 2; i < len(b) && i < 2+33; i++ {
				if b[i] == 0 {
					return take(Ignored, i+1)
				}
			}
			if len(b) >= 2+33 {
				return take(Ignored, 2+33)
			}
			return Op{}, b, ErrIncomplete
		}
		return take(Unknown, 2)
	}
	kind := Ignored
	switch b[1] {
	case '@':
		kind = Init
	case 't':
		kind = CodeTable
	case 'E':
		kind = Bold
	case 'a':
		kind = Justify
	case 'd':
		kind = FeedLines
	case '!':
		kind = PrintMode
	}
	return take(kind, 2+n)
}

func parseGS(b []byte, take taker) (Op, []byte, error) {
	if len(b) < 2 {
		return Op{}, b, ErrIncomplete
	}
	switch b[1] {
	case '!':
		return take(CharSize, 3)
	case 'a':
		return take(ASB, 3)
	case 'r':
		return take(TransmitStatus, 3)
	case 'V': // function A: GS V m (m 0, 1, 48, 49); B, C, D: GS V m n
		if len(b) < 3 {
			return Op{}, b, ErrIncomplete
		}
		if m := b[2]; m == 0 || m == 1 || m == 48 || m == 49 {
			return take(Cut, 3)
		}
		return take(Cut, 4)
	case 'B', 'H', 'h', 'w', 'f', 'I', 'b', 'E', 'j', 'T', 'c':
		return take(Ignored, 3)
	case 'L', 'W', 'P', '$', '\\':
		return take(Ignored, 4)
	case '(': // GS ( X pL pH d1…dk
		if len(b) < 5 {
			return Op{}, b, ErrIncomplete
		}
		k := int(b[3]) | int(b[4])<<8
		op, rest, err := take(Ignored, 5+k)
		if err != nil || b[2] != 'k' || k < 2 || b[5] != 49 {
			return op, rest, err
		}
		op.Kind, op.Fn, op.Data = QR, b[6], op.Raw[7:]
		return op, rest, nil
	case 'k': // GS k m d1…dk NUL (m ≤ 6) or GS k m n d1…dn (m ≥ 65)
		if len(b) < 4 {
			return Op{}, b, ErrIncomplete
		}
		if b[2] >= 65 {
			return take(Ignored, 4+int(b[3]))
		}
		for i := 3; i < len(b) && i < 3+256; i++ {
			if b[i] == 0 {
				return take(Ignored, i+1)
			}
		}
		if len(b) >= 3+256 {
			return take(Ignored, 3+256)
		}
		return Op{}, b, ErrIncomplete
	case 'v': // GS v 0 m xL xH yL yH d1…dk, k = (xL + xH·256)·(yL + yH·256)
		if len(b) < 8 {
			return Op{}, b, ErrIncomplete
		}
		k := (int(b[4]) | int(b[5])<<8) * (int(b[6]) | int(b[7])<<8)
		return take(Ignored, 8+k)
	}
	return take(Unknown, 2)
}

func parseFS(b []byte, take taker) (Op, []byte, error) {
	if len(b) < 2 {
		return Op{}, b, ErrIncomplete
	}
	switch b[1] {
	case '(':
		if len(b) < 5 {
			return Op{}, b, ErrIncomplete
		}
		return take(Ignored, 5+(int(b[3])|int(b[4])<<8))
	case '.', '&':
		return take(Ignored, 2)
	}
	return take(Unknown, 2)
}
