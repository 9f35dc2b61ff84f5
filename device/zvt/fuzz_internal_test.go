package zvt

import (
	"bytes"
	"testing"

	"github.com/posgate/posgate/device"
)

// FuzzParseTextBlock feeds the 06 D3 parser anything: it must not panic,
// and what it reads from a block it built must come back.
func FuzzParseTextBlock(f *testing.F) {
	f.Add(PrintTextBlock(2, []string{"ABC", "DEF"}).Data)
	f.Add(PrintTextBlock(3, nil).Data)
	f.Add([]byte{0x06, 0x12, 0x1F, 0x07, 0x01, 0x02, 0x25, 0x0D, 0x07, 0x03, 0x41, 0x42, 0x43, 0x07, 0x03, 0x44, 0x45, 0x46, 0x09, 0x01, 0x81})
	f.Add([]byte{0x06, 0x04, 0x25, 0x02, 0x09, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		rc, ended, err := parseTextBlock(in)
		if err != nil {
			return
		}
		if len(rc.Lines) > len(in) {
			t.Fatalf("%d lines from %d bytes", len(rc.Lines), len(in))
		}
		kind := map[string]byte{"merchant": 1, "customer": 2, "administration": 3}[rc.Kind]
		if kind == 0 {
			return
		}
		back, ended2, err := parseTextBlock(PrintTextBlock(kind, rc.Lines).Data)
		if err != nil || !ended2 || back.Kind != rc.Kind || len(back.Lines) != len(rc.Lines) {
			t.Fatalf("round trip: %+v %v %v, from %+v ended=%v", back, ended2, err, rc, ended)
		}
	})
}

// FuzzSync feeds the receipt-number code a terminal's Status-Information
// and the client's next command: no panic, and a command it cannot parse
// goes out unchanged.
func FuzzSync(f *testing.F) {
	f.Add([]byte{0x27, 0x00, 0x87, 0x00, 0x07, 0x06, 0x05, 0x1F, 0x1F, 0x02, 0x00, 0x07}, []byte{0x04, 0, 0, 0, 0, 0x12, 0x34, 0x06, 0x00})
	f.Add([]byte{0x06, 0x03, 0x1F, 0x1F, 0x00}, []byte{0x00, 0x00, 0x00, 0x87, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, si, cmd []byte) {
		c := &Client{registered: true}
		info, _ := ParseStatusInfo(si)
		if info == nil {
			info = &device.TxInfo{}
		}
		c.noteReceipt(si, info)
		for _, instr := range []byte{0x01, 0x30, 0x50, 0x22} {
			in := APDU{Class: 0x06, Instr: instr, Data: cmd}
			out := c.fillSync(in)
			if _, err := DecodeFields(cmd[min(len(cmd), syncCommands[in.Command()]):]); err != nil && len(out.Data) != len(cmd) {
				t.Fatalf("changed a command it cannot parse: % X → % X", cmd, out.Data)
			}
		}
	})
}

// FuzzSeqID reads sequence ids from any APDU without panicking, and finds
// the one WithTLV put into a command it can parse.
func FuzzSeqID(f *testing.F) {
	f.Add(byte(0x04), byte(0xFF), []byte{0x17, 0x06, 0x06, 0x1F, 0x73, 0x03, 0x00, 0x00, 0x02})
	f.Add(byte(0x06), byte(0x01), []byte{0x04, 0, 0, 0, 0, 0x01, 0x00, 0x06, 0x00})
	f.Add(byte(0x80), byte(0x00), []byte{0x06, 0x06, 0x1F, 0x73, 0x03, 0x00, 0x00, 0x11})
	f.Fuzz(func(t *testing.T, class, instr byte, data []byte) {
		a := APDU{Class: class, Instr: instr, Data: data}
		SeqIDOf(a)
		off, ok := seqCommands[a.Command()]
		if !ok || a.Command() == CmdRegistration {
			return
		}
		if len(data) < off {
			return
		}
		fs, err := DecodeFields(data[off:])
		if err != nil {
			return
		}
		for _, f := range fs {
			if _, err := DecodeTLVs(f.Value); f.BMP == 0x06 && err != nil {
				return // a broken container stays broken
			}
		}
		if bytes.Contains(data, []byte{0x1F, 0x73}) {
			return // a second 1F73 would not be the one found first
		}
		if id, ok := SeqIDOf(WithTLV(a, off, SeqTLV(4711))); !ok || id != 4711 {
			t.Fatalf("id %d %v from % X", id, ok, WithTLV(a, off, SeqTLV(4711)).Data)
		}
	})
}

// FuzzMaskTrack2PAN feeds the track 2 masker (Read Card, §3.1.2) any
// bytes: no panic, and never more than 8 digits of a card number out.
func FuzzMaskTrack2PAN(f *testing.F) {
	f.Add([]byte{0x67, 0x99, 0x99, 0x89, 0x00, 0x00, 0x00, 0x00, 0x01, 0x9D, 0x25, 0x12})
	f.Add([]byte{0x45, 0x12, 0xEE, 0xEE, 0xEE, 0xEE, 0x12, 0x34, 0xD2, 0x51, 0x2F})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		out := maskTrack2PAN(in)
		digits := 0
		for _, c := range out {
			if c >= '0' && c <= '9' {
				digits++
			}
		}
		if digits > 8 {
			t.Fatalf("maskTrack2PAN(% X) = %q shows %d digits", in, out, digits)
		}
	})
}
