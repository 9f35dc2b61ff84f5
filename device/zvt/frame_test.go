package zvt_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posgate/posgate/device/zvt"
)

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "frames", name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pwd(t testing.TB, s string) []byte {
	t.Helper()
	p, err := zvt.Password(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCRCKermitCheck(t *testing.T) {
	if got, want := zvt.CRC([]byte("123456789")), uint16(0x2189); got != want {
		t.Fatalf("CRC=%04X, want %04X", got, want)
	}
}

// TestGoldenFrames encodes what the builders produce and compares it with
// the research's frames byte for byte, then decodes the frames back.
func TestGoldenFrames(t *testing.T) {
	p0 := pwd(t, "000000")
	tests := []struct {
		name string
		apdu zvt.APDU
	}{
		{"ack", zvt.Ack()},
		{"nack_9c", zvt.Nack(0x9C)},
		{"status_enquiry_ingenico", zvt.StatusEnquiry(pwd(t, "123456"))},
		{"registration_ba", zvt.APDU{Class: 0x06, Instr: 0x00, Data: append(append([]byte{}, p0...), 0xBA)}},
		{"registration_cc_tlv", zvt.Registration(p0, 0xBA, 978)},
		{"authorization_1234", zvt.Authorization(1234, 978)},
		{"reversal_0010", zvt.Reversal(p0, 10)},
		{"refund_500", zvt.Refund(p0, 500, 0)},
		{"end_of_day", zvt.EndOfDay(p0)},
		{"repeat_receipt", zvt.RepeatReceipt(p0)},
		{"abort_ecr", zvt.AbortCmd()},
		{"log_off", zvt.LogOff()},
		{"completion", zvt.Completion()},
		{"abort_pt_6c", zvt.AbortPT(0x6C)},
		{"intermediate_insert_card", zvt.Intermediate(0x0A)},
		{"completion_ingenico_status", zvt.APDU{Class: 0x06, Instr: 0x0F,
			Data: append(append([]byte{0xF0, 0xF1, 0xF7}, "061022a M IC_ Std"...), 0x00)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := readGolden(t, tt.name)
			if got := zvt.EncodeFrame(tt.apdu.Encode()); !bytes.Equal(got, want) {
				t.Fatalf("EncodeFrame=% X\n          want % X", got, want)
			}
			raw, rest, err := zvt.DecodeFrame(want)
			if err != nil || len(rest) != 0 {
				t.Fatalf("DecodeFrame: rest=% X err=%v", rest, err)
			}
			a, rest, err := zvt.DecodeAPDU(raw)
			if err != nil || len(rest) != 0 {
				t.Fatalf("DecodeAPDU: rest=% X err=%v", rest, err)
			}
			if a.Command() != tt.apdu.Command() || !bytes.Equal(a.Data, tt.apdu.Data) {
				t.Fatalf("decoded %s % X, want %s % X", a, a.Data, tt.apdu, tt.apdu.Data)
			}
		})
	}
}

// TestRealTraceCRC checks the CRC against bytes a real Ingenico i5310 sent
// (research §1.4), computed over APDU+ETX.
func TestRealTraceCRC(t *testing.T) {
	for _, tt := range []struct {
		apdu string
		lo   byte
		hi   byte
	}{
		{"05 01 03 12 34 56", 0xE0, 0x43},
		{"80 00 00", 0xF5, 0x1F},
	} {
		var b []byte
		for _, h := range strings.Fields(tt.apdu) {
			var x byte
			for _, c := range h {
				x = x<<4 | byte(strings.IndexRune("0123456789ABCDEF", c))
			}
			b = append(b, x)
		}
		c := zvt.CRC(append(b, zvt.ETX))
		if byte(c) != tt.lo || byte(c>>8) != tt.hi {
			t.Fatalf("CRC(%s 03)=%02X %02X, want %02X %02X", tt.apdu, byte(c), byte(c>>8), tt.lo, tt.hi)
		}
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	good := readGolden(t, "reversal_0010")
	t.Run("ErrIncomplete", func(t *testing.T) {
		for i := 0; i < len(good); i++ {
			if _, _, err := zvt.DecodeFrame(good[:i]); !errors.Is(err, zvt.ErrIncomplete) {
				t.Fatalf("prefix %d: err=%v, want ErrIncomplete", i, err)
			}
		}
	})
	t.Run("ErrCRC", func(t *testing.T) {
		bad := append([]byte{}, good...)
		bad[len(bad)-1] ^= 0xFF
		_, rest, err := zvt.DecodeFrame(append(bad, 0x06))
		if !errors.Is(err, zvt.ErrCRC) || !bytes.Equal(rest, []byte{0x06}) {
			t.Fatalf("rest=% X err=%v, want ErrCRC and the byte after the frame", rest, err)
		}
	})
	t.Run("ErrFrame", func(t *testing.T) {
		if _, _, err := zvt.DecodeFrame([]byte{0x10, 0x02, 0x06, 0x10, 0x07}); !errors.Is(err, zvt.ErrFrame) {
			t.Fatalf("err=%v, want ErrFrame", err)
		}
		if _, _, err := zvt.DecodeFrame([]byte{0x06, 0x10, 0x02}); !errors.Is(err, zvt.ErrFrame) {
			t.Fatalf("err=%v, want ErrFrame", err)
		}
	})
	t.Run("BackToBack", func(t *testing.T) {
		two := append(append([]byte{}, good...), readGolden(t, "ack")...)
		_, rest, err := zvt.DecodeFrame(two)
		if err != nil || !bytes.Equal(rest, readGolden(t, "ack")) {
			t.Fatalf("rest=% X err=%v", rest, err)
		}
	})
}

func TestCRCByteIsDLE(t *testing.T) {
	// CRC bytes are not stuffed, so a CRC byte of 10 must not confuse the
	// decoder. Search for an APDU whose CRC contains 0x10.
	for i := range 1 << 16 {
		a := zvt.APDU{Class: 0x04, Instr: 0xFF, Data: []byte{byte(i), byte(i >> 8)}}
		f := zvt.EncodeFrame(a.Encode())
		if f[len(f)-1] != zvt.DLE && f[len(f)-2] != zvt.DLE {
			continue
		}
		raw, rest, err := zvt.DecodeFrame(append(f, zvt.ACK))
		if err != nil || !bytes.Equal(raw, a.Encode()) || !bytes.Equal(rest, []byte{zvt.ACK}) {
			t.Fatalf("frame % X: raw=% X rest=% X err=%v", f, raw, rest, err)
		}
		return
	}
	t.Fatal("no CRC with a DLE byte found")
}

func TestExtendedLengths(t *testing.T) {
	// PA00P015 p.141: APDU length FF 5D 03 (0x035D, little-endian) around a
	// BMP 06 with BER length 82 03 59 (0x0359, big-endian).
	tlv := make([]byte, 0x359)
	a := zvt.APDU{Class: 0x06, Instr: 0xD3, Data: zvt.AppendField(nil, zvt.Field{BMP: 0x06, Value: tlv})}
	enc := a.Encode()
	if got, want := enc[:9], []byte{0x06, 0xD3, 0xFF, 0x5D, 0x03, 0x06, 0x82, 0x03, 0x59}; !bytes.Equal(got, want) {
		t.Fatalf("header=% X, want % X", got, want)
	}
	back, rest, err := zvt.DecodeAPDU(enc)
	if err != nil || len(rest) != 0 || len(back.Data) != 0x35D {
		t.Fatalf("decode: len=%d rest=%d err=%v", len(back.Data), len(rest), err)
	}
	fs, err := zvt.DecodeFields(back.Data)
	if err != nil || len(fs) != 1 || len(fs[0].Value) != 0x359 {
		t.Fatalf("fields=%d err=%v", len(fs), err)
	}
	// BER 81 xx.
	short := zvt.AppendTLV(nil, zvt.TLV{Tag: 0x1F07, Value: make([]byte, 200)})
	if got, want := short[:4], []byte{0x1F, 0x07, 0x81, 200}; !bytes.Equal(got, want) {
		t.Fatalf("tlv header=% X, want % X", got, want)
	}
}

func TestUnknownBMPStopsParser(t *testing.T) {
	_, err := zvt.DecodeFields([]byte{0x27, 0x00, 0x5F, 0x01, 0x04})
	if !errors.Is(err, zvt.ErrUnknownBMP) {
		t.Fatalf("err=%v, want ErrUnknownBMP", err)
	}
}

func TestMaskedTrace(t *testing.T) {
	pan := zvt.Field{BMP: 0x22, Value: []byte{0x67, 0x99, 0x99, 0x89, 0x00, 0x00, 0x00, 0x00, 0x01, 0x9F}}
	a := zvt.StatusInfo(zvt.Field{BMP: 0x27, Value: []byte{0}}, zvt.BCDField(0x04, 1234, 6), pan,
		zvt.Field{BMP: 0x23, Value: []byte("6799998900000000019=2512")})
	d := zvt.Describe(a)
	if strings.Contains(d, "99989") || strings.Contains(d, "2512") || !strings.Contains(d, "6799***********0019") {
		t.Fatalf("Describe=%q", d)
	}
	m := zvt.Masked(a).Encode()
	if bytes.Contains(m, []byte{0x99, 0x89}) || bytes.Contains(m, []byte("2512")) {
		t.Fatalf("Masked=% X", m)
	}
	if !strings.Contains(d, "amount") || !strings.Contains(d, "12.34") {
		t.Fatalf("Describe=%q lacks the amount", d)
	}
}

func TestParseStatusInfoKeepsFieldsBeforeUnknownBMP(t *testing.T) {
	data := zvt.AppendFields(nil, []zvt.Field{{BMP: 0x27, Value: []byte{0}}, zvt.BCDField(0x04, 1234, 6), zvt.BCDField(0x87, 42, 2)})
	data = append(data, 0x5F, 0x01, 0x02) // a vendor BMP the table lacks
	info, err := zvt.ParseStatusInfo(data)
	if !errors.Is(err, zvt.ErrUnknownBMP) {
		t.Fatalf("err=%v, want ErrUnknownBMP", err)
	}
	if info == nil || info.Amount != 1234 || info.ReceiptNo != 42 {
		t.Fatalf("info=%+v", info)
	}
	if _, err := zvt.ParseStatusInfo([]byte{0x04, 0x00, 0x01}); errors.Is(err, zvt.ErrUnknownBMP) || err == nil {
		t.Fatalf("truncated amount: err=%v, want a parse error", err)
	}
}
