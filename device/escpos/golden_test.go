package escpos_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/escpos"
)

// unhex turns "1D 28 6B" into bytes; the vectors below are written by hand
// from the Epson ESC/POS Command Reference (TM printers), one section per
// command, not from the encoders under test.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad vector %q: %v", s, err)
	}
	return b
}

func same(t *testing.T, name string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = % X, want % X", name, got, want)
	}
}

// ESC/POS reference, "GS ( k <Function 165>, <Function 167>, <Function 169>,
// <Function 180>, <Function 181>" (QR Code, cn = 49).
func TestGoldenQR(t *testing.T) {
	// Function 165: GS ( k pL pH cn fn n1 n2 = 1D 28 6B 04 00 31 41 n1 00; n1 = 50 selects model 2.
	same(t, "QRSelectModel(model 2)", escpos.QRSelectModel(escpos.QRModel2), unhex(t, "1D 28 6B 04 00 31 41 32 00"))
	// Function 167: GS ( k 03 00 31 43 n; module size n dots (1 ≤ n ≤ 16).
	same(t, "QRModuleSize(6)", escpos.QRModuleSize(6), unhex(t, "1D 28 6B 03 00 31 43 06"))
	// Function 169: GS ( k 03 00 31 45 n; n = 48 L, 49 M, 50 Q, 51 H.
	same(t, "QRErrorLevel(M)", escpos.QRErrorLevel(escpos.QRLevelM), unhex(t, "1D 28 6B 03 00 31 45 31"))
	same(t, "QRErrorLevel(H)", escpos.QRErrorLevel(escpos.QRLevelH), unhex(t, "1D 28 6B 03 00 31 45 33"))
	// Function 180: GS ( k pL pH 31 50 30 d1…dk, (pL + pH × 256) = k + 3.
	url := "https://efitest.tax.gov.me/ic/#/verify?iic=ABC"
	store := escpos.QRStore([]byte(url))
	k := len(url) + 3
	want := append(unhex(t, "1D 28 6B"), byte(k), byte(k>>8), 0x31, 0x50, 0x30)
	same(t, "QRStore(url)", store, append(want, url...))
	// A payload over 252 bytes needs pH: 300 bytes → k+3 = 303 = 0x012F.
	long := bytes.Repeat([]byte{'A'}, 300)
	same(t, "QRStore(300 bytes) header", escpos.QRStore(long)[:8], unhex(t, "1D 28 6B 2F 01 31 50 30"))
	// Function 181: GS ( k 03 00 31 51 30 prints the stored symbol.
	same(t, "QRPrint", escpos.QRPrint(), unhex(t, "1D 28 6B 03 00 31 51 30"))
}

// ESC/POS reference, "ESC t Select character code table": Page 18
// [PC852: Latin 2] and Page 45 [WPC1250: Latin 2]. Byte values from the
// code page charts of CP852 and Windows-1250.
func TestGoldenCodePage(t *testing.T) {
	same(t, "CP852.Select", escpos.CP852.Select(), unhex(t, "1B 74 12"))
	same(t, "WPC1250.Select", escpos.WPC1250.Select(), unhex(t, "1B 74 2D"))
	letters := "čćšžđČĆŠŽĐ"
	same(t, "CP852.Encode", escpos.CP852.Encode(letters), unhex(t, "9F 86 E7 A7 D0 AC 8F E6 A6 D1"))
	same(t, "WPC1250.Encode", escpos.WPC1250.Encode(letters), unhex(t, "E8 E6 9A 9E F0 C8 C6 8A 8E D0"))
	// ASCII is unchanged; a letter neither page has prints as '?'; control
	// characters are blanked so text cannot carry commands (ESC, GS, DLE).
	same(t, "CP852.Encode(mixed)", escpos.CP852.Encode("Ab1 €\x1b@\x1dV\x10"), unhex(t, "41 62 31 20 3F 20 40 20 56 20"))
	if got := escpos.CP852.Decode(escpos.CP852.Encode(letters)); got != letters {
		t.Errorf("CP852 round trip = %q, want %q", got, letters)
	}
	if _, err := escpos.CodePageByName("cp1251"); err == nil {
		t.Error("CodePageByName(cp1251) accepted a page without the Montenegrin letters")
	}
}

// ESC/POS reference, "GS V Select cut mode and cut paper", function B:
// GS V m n with m = 66 feeds to the cutting position + n and cuts partially.
func TestGoldenCut(t *testing.T) {
	same(t, "CutAfterFeed(0)", escpos.CutAfterFeed(0), unhex(t, "1D 56 42 00"))
	same(t, "CutAfterFeed(3)", escpos.CutAfterFeed(3), unhex(t, "1D 56 42 03"))
}

// ESC/POS reference, "ESC @", "ESC E", "ESC a", "GS !", "ESC d".
func TestGoldenText(t *testing.T) {
	same(t, "Init", escpos.Init(), unhex(t, "1B 40"))
	same(t, "Bold(true)", escpos.Bold(true), unhex(t, "1B 45 01"))
	same(t, "Bold(false)", escpos.Bold(false), unhex(t, "1B 45 00"))
	same(t, "Justify(centre)", escpos.Justify(1), unhex(t, "1B 61 01"))
	// GS ! n: bits 4–6 width − 1, bits 0–2 height − 1; 11h is double both.
	same(t, "Size(2,2)", escpos.Size(2, 2), unhex(t, "1D 21 11"))
	same(t, "Size(1,1)", escpos.Size(1, 1), unhex(t, "1D 21 00"))
	same(t, "Feed(3)", escpos.Feed(3), unhex(t, "1B 64 03"))
}

// ESC/POS reference, "DLE EOT Transmit real-time status", "GS a
// Enable/disable Automatic Status Back", "GS r Transmit status".
func TestGoldenStatusCommands(t *testing.T) {
	for n := byte(1); n <= 4; n++ {
		same(t, "RealtimeStatus", escpos.RealtimeStatus(n), []byte{0x10, 0x04, n})
	}
	// GS a n: bit 1 online/offline, bit 2 error, bit 3 roll paper sensor.
	same(t, "AutoStatusBack(ASBAll)", escpos.AutoStatusBack(escpos.ASBAll), unhex(t, "1D 61 0E"))
	same(t, "PaperSensorStatus", escpos.PaperSensorStatus(), unhex(t, "1D 72 01"))
}

// The answers of DLE EOT n = 1…4 as the reference tabulates them: every
// byte 0xx1xx10; n=1 bit 3 offline, bit 5 waiting for online recovery;
// n=2 bit 2 cover open, bit 5 stopped by paper end, bit 6 error; n=3
// bit 3 autocutter error; n=4 bits 2–3 near end, bits 5–6 paper end.
func TestGoldenStatusAnswers(t *testing.T) {
	tests := []struct {
		name       string
		b          [4]byte
		want       error // nil: ready
		near, open bool
	}{
		{"OK", [4]byte{0x16, 0x12, 0x12, 0x12}, nil, false, false},
		{"NearEnd", [4]byte{0x16, 0x12, 0x12, 0x1E}, nil, true, false},
		{"ErrPaperOut", [4]byte{0x3A, 0x32, 0x12, 0x7E}, device.ErrPaperOut, true, false},
		{"ErrCoverOpen", [4]byte{0x3A, 0x16, 0x12, 0x12}, device.ErrCoverOpen, false, true},
		{"ErrCutter", [4]byte{0x3A, 0x52, 0x1A, 0x12}, device.ErrPrinterMechanism, false, false},
		{"ErrOffline", [4]byte{0x1A, 0x1A, 0x12, 0x12}, device.ErrOffline, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := escpos.ParseRealtime(tc.b[0], tc.b[1], tc.b[2], tc.b[3])
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Err(); (got == nil) != (tc.want == nil) || tc.want != nil && !errors.Is(got, tc.want) {
				t.Errorf("Err() = %v, want %v", got, tc.want)
			}
			if st.PaperNearEnd != tc.near || st.CoverOpen != tc.open {
				t.Errorf("near end %v cover open %v, want %v %v", st.PaperNearEnd, st.CoverOpen, tc.near, tc.open)
			}
		})
	}
	if _, err := escpos.ParseRealtime(0x00, 0x12, 0x12, 0x12); err == nil {
		t.Error("ParseRealtime accepted 00h, which is no DLE EOT answer (bits 1 and 4 are fixed on)")
	}
}

// "GS a" ASB message: byte 1 0xx1xx00 (bit 3 offline, bit 5 cover open),
// byte 2 errors, byte 3 bits 0–1 near end and 2–3 paper end, byte 4.
func TestGoldenASB(t *testing.T) {
	st, err := escpos.ParseASB([4]byte{0x10, 0x00, 0x00, 0x00})
	if err != nil || !st.Ready() {
		t.Fatalf("ASB 10 00 00 00 = %+v, %v; want ready", st, err)
	}
	st, err = escpos.ParseASB([4]byte{0x18, 0x00, 0x0F, 0x00})
	if err != nil || !errors.Is(st.Err(), device.ErrPaperOut) {
		t.Fatalf("ASB 18 00 0F 00 = %+v, %v; want paper out", st, err)
	}
	st, err = escpos.ParseASB([4]byte{0x38, 0x00, 0x00, 0x00})
	if err != nil || !errors.Is(st.Err(), device.ErrCoverOpen) {
		t.Fatalf("ASB 38 00 00 00 = %+v, %v; want cover open", st, err)
	}
	if _, err := escpos.ParseASB([4]byte{0x12, 0x00, 0x00, 0x00}); err == nil {
		t.Error("ParseASB accepted a DLE EOT answer (0xx1xx10) as an ASB header")
	}
}
