package escpos_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/posgate/posgate/simulator/escpos"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad vector %q: %v", s, err)
	}
	return b
}

// Commands as the Epson ESC/POS Command Reference writes them, one per
// section, and what the parser must make of them.
func TestParseGolden(t *testing.T) {
	tests := []struct {
		section string
		in      string
		kind    escpos.Kind
		n, fn   byte
		data    string // hex
	}{
		{"ESC @ Initialize printer", "1B 40", escpos.Init, 0, 0, ""},
		{"ESC t Select character code table (18 PC852)", "1B 74 12", escpos.CodeTable, 18, 0, ""},
		{"ESC E Turn emphasized mode on", "1B 45 01", escpos.Bold, 1, 0, ""},
		{"ESC a Select justification (centre)", "1B 61 01", escpos.Justify, 1, 0, ""},
		{"GS ! Select character size (double)", "1D 21 11", escpos.CharSize, 0x11, 0, ""},
		{"ESC ! Select print modes", "1B 21 38", escpos.PrintMode, 0x38, 0, ""},
		{"ESC d Print and feed n lines", "1B 64 03", escpos.FeedLines, 3, 0, ""},
		{"GS V function A (full cut)", "1D 56 00", escpos.Cut, 0, 0, ""},
		{"GS V function B (feed and partial cut)", "1D 56 42 05", escpos.Cut, 66, 0, ""},
		{"DLE EOT Transmit real-time status (n=4)", "10 04 04", escpos.RealtimeStatus, 4, 0, ""},
		{"GS a Enable Automatic Status Back", "1D 61 0E", escpos.ASB, 0x0E, 0, ""},
		{"GS r Transmit status (paper sensor)", "1D 72 01", escpos.TransmitStatus, 1, 0, ""},
		{"GS ( k Function 165 select model 2", "1D 28 6B 04 00 31 41 32 00", escpos.QR, 0, 65, "32 00"},
		{"GS ( k Function 167 module size", "1D 28 6B 03 00 31 43 06", escpos.QR, 0, 67, "06"},
		{"GS ( k Function 169 error correction M", "1D 28 6B 03 00 31 45 31", escpos.QR, 0, 69, "31"},
		{"GS ( k Function 180 store \"AB\"", "1D 28 6B 05 00 31 50 30 41 42", escpos.QR, 0, 80, "30 41 42"},
		{"GS ( k Function 181 print", "1D 28 6B 03 00 31 51 30", escpos.QR, 0, 81, "30"},
		{"GS k barcode function B (CODE39, n=3)", "1D 6B 45 03 41 42 43", escpos.Ignored, 0x45, 0, ""},
		{"GS v 0 raster bit image 1×2", "1D 76 30 00 01 00 02 00 FF 00", escpos.Ignored, 0x30, 0, ""},
		{"ESC p Generate pulse", "1B 70 00 19 FA", escpos.Ignored, 0, 0, ""},
		{"LF", "0A", escpos.LineFeed, 0, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.section, func(t *testing.T) {
			in := unhex(t, tc.in)
			op, rest, err := escpos.Parse(append(in, 'X'))
			if err != nil {
				t.Fatal(err)
			}
			if op.Kind != tc.kind || !bytes.Equal(op.Raw, in) || string(rest) != "X" {
				t.Fatalf("Parse = kind %d raw % X rest %q; want kind %d raw % X rest \"X\"", op.Kind, op.Raw, rest, tc.kind, in)
			}
			if tc.kind != escpos.QR && len(in) >= 3 && op.N != tc.n {
				t.Errorf("N = %d, want %d", op.N, tc.n)
			}
			if tc.kind == escpos.QR && (op.Fn != tc.fn || !bytes.Equal(op.Data, unhex(t, tc.data))) {
				t.Errorf("fn %d data % X, want %d % X", op.Fn, op.Data, tc.fn, unhex(t, tc.data))
			}
			// Every proper prefix is incomplete, and leaves the input alone.
			for i := 1; i < len(in); i++ {
				if _, rest, err := escpos.Parse(in[:i]); !errors.Is(err, escpos.ErrIncomplete) || len(rest) != i {
					t.Errorf("Parse(% X) = %v rest %d, want ErrIncomplete", in[:i], err, len(rest))
				}
			}
		})
	}
}

func TestParseText(t *testing.T) {
	op, rest, err := escpos.Parse([]byte("Žab\x0a"))
	if err != nil || op.Kind != escpos.Text || string(op.Data) != "Žab" || !bytes.Equal(rest, []byte{0x0a}) {
		t.Fatalf("Parse = %+v %q %v", op, rest, err)
	}
}

func TestParseTooLong(t *testing.T) {
	// GS v 0 announcing 65535 × 65535 bytes is skipped byte by byte.
	in := unhex(t, "1D 76 30 00 FF FF FF FF")
	_, rest, err := escpos.Parse(in)
	if !errors.Is(err, escpos.ErrTooLong) || len(rest) != len(in)-1 {
		t.Fatalf("Parse = rest %d %v, want ErrTooLong and one byte skipped", len(rest), err)
	}
}

// FuzzParse: no panic; a parsed command is a non-empty prefix of the
// input (Raw) and rest is the remainder; ErrIncomplete leaves the input
// whole; ErrTooLong skips exactly one byte. So a stream is always consumed.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"1B 40 1D 61 0E 1B 74 12 1B 61 01 1B 45 01 1D 21 11 A6 61 62 0A",
		"1D 28 6B 04 00 31 41 32 00 1D 28 6B 03 00 31 43 06 1D 28 6B 05 00 31 50 30 41 42 1D 28 6B 03 00 31 51 30",
		"10 04 01 10 04 04 1D 72 01 1D 56 42 00",
		"1D 6B 04 41 42 00 1D 76 30 00 01 00 01 00 FF",
		"1B 44 08 10 00 1C 28 41 02 00 30 31 10 14 01 00 05",
		"1D 28 6B FF FF 31",
	} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			op, rest, err := escpos.Parse(b)
			switch {
			case errors.Is(err, escpos.ErrIncomplete):
				if len(rest) != len(b) {
					t.Fatalf("ErrIncomplete consumed bytes: %d of %d left", len(rest), len(b))
				}
				return
			case errors.Is(err, escpos.ErrTooLong):
				if len(rest) != len(b)-1 {
					t.Fatalf("ErrTooLong left %d of %d", len(rest), len(b))
				}
			case err != nil:
				t.Fatalf("unexpected error %v", err)
			default:
				if len(op.Raw) == 0 || len(rest) >= len(b) || !bytes.Equal(append(append([]byte(nil), op.Raw...), rest...), b) {
					t.Fatalf("Parse(% X) = raw % X rest % X", b, op.Raw, rest)
				}
			}
			b = rest
		}
	})
}
