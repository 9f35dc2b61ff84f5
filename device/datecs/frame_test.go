package datecs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/posgate/posgate/device/datecs"
)

var okStatus = []byte{0x80, 0x80, 0x80, 0x80, 0x86, 0x9A, 0x80, 0x80}

// vectors are the verified frames of research/fiscal.md §0.1; the first two
// are byte-identical to frames ErpNet.FP logged in its issues #50/#56, the
// last one is the real error answer from its issue #135.
var vectors = []struct {
	file    string
	profile datecs.Profile
	msg     datecs.Msg
}{
	{"isl-info-req", datecs.ISL, datecs.Msg{Seq: 0x21, Cmd: 0x5A, Data: []byte("1")}},
	{"x-info-req", datecs.X, datecs.Msg{Seq: 0x21, Cmd: 0x5A, Data: []byte("1")}},
	{"x-status-req", datecs.X, datecs.Msg{Seq: 0x20, Cmd: 0x4A, Data: []byte{}}},
	{"x-open-req", datecs.X, datecs.Msg{Seq: 0x20, Cmd: 0x30, Data: datecs.Params("1", "0000", "DT000600-0001-0000001", "1", "")}},
	{"x-sale-req", datecs.X, datecs.Msg{Seq: 0x20, Cmd: 0x31, Data: datecs.Params("Cheese", "2", "12.00", "1", "", "", "0")}},
	{"x-payment-req", datecs.X, datecs.Msg{Seq: 0x20, Cmd: 0x35, Data: datecs.Params("0", "12.00", "")}},
	{"x-close-req", datecs.X, datecs.Msg{Seq: 0x20, Cmd: 0x38, Data: []byte{}}},
	{"x-cancel-req", datecs.X, datecs.Msg{Seq: 0x20, Cmd: 0x3C, Data: []byte{}}},
	{"x-xreport-req", datecs.X, datecs.Msg{Seq: 0x20, Cmd: 0x45, Data: datecs.Params("X")}},
	{"x-zreport-req", datecs.X, datecs.Msg{Seq: 0x20, Cmd: 0x45, Data: datecs.Params("Z")}},
	{"x-open-ans", datecs.X, datecs.Msg{Seq: 0x20, Cmd: 0x30, Data: datecs.Params("0", "1"),
		Status: []byte{0x80, 0x80, 0x88, 0x80, 0x86, 0x9A, 0x80, 0x80}}},
	{"x-error-ans-erpnet135", datecs.X, datecs.Msg{Seq: 0x30, Cmd: 0x35, Data: datecs.Params("-111016"), Status: okStatus}},
}

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "datecs", name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.file, func(t *testing.T) {
			want := readVector(t, v.file)
			got, err := v.profile.Encode(v.msg)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Encode=% X\nwant    % X", got, want)
			}
			m, rest, err := v.profile.Decode(append(want, 0x16))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !bytes.Equal(rest, []byte{0x16}) {
				t.Fatalf("rest=% X, want 16", rest)
			}
			if !reflect.DeepEqual(m, v.msg) {
				t.Fatalf("Decode=%+v\nwant    %+v", m, v.msg)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	frame := readVector(t, "x-sale-req")
	t.Run("ErrIncomplete", func(t *testing.T) {
		for i := 0; i < len(frame); i++ {
			_, rest, err := datecs.Decode(frame[:i])
			if !errors.Is(err, datecs.ErrIncomplete) {
				t.Fatalf("Decode(%d bytes) err=%v, want ErrIncomplete", i, err)
			}
			if len(rest) != i {
				t.Fatalf("rest=%d bytes, want %d", len(rest), i)
			}
		}
	})
	t.Run("ErrChecksum", func(t *testing.T) {
		bad := append([]byte{}, frame...)
		bad[12] ^= 0x01 // a byte of the item name
		_, rest, err := datecs.Decode(append(bad, 0x01))
		if !errors.Is(err, datecs.ErrChecksum) {
			t.Fatalf("err=%v, want ErrChecksum", err)
		}
		if !bytes.Equal(rest, []byte{0x01}) {
			t.Fatalf("rest=% X, want the bytes after the bad frame", rest)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		bad := append([]byte{}, frame...)
		bad[2] = 0x41 // not a nibble
		if _, _, err := datecs.Decode(bad); !errors.Is(err, datecs.ErrMalformed) {
			t.Fatalf("err=%v, want ErrMalformed", err)
		}
	})
}

func TestParams(t *testing.T) {
	// Bytes below 0x20 travel escaped, and text is CP1251.
	got := datecs.Params("a\tb", "Сирене")
	want := []byte{'a', 0x10, 0x49, 'b', 0x09, 0xD1, 0xE8, 0xF0, 0xE5, 0xED, 0xE5, 0x09}
	if !bytes.Equal(got, want) {
		t.Fatalf("Params=% X, want % X", got, want)
	}
	if f := datecs.Fields(got); !reflect.DeepEqual(f, []string{"a\tb", "Сирене"}) {
		t.Fatalf("Fields=%q", f)
	}
	m := datecs.Msg{Seq: 0x40, Cmd: 0x36, Data: got}
	frame, err := datecs.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.IndexFunc(frame[5:len(frame)-6], func(r rune) bool { return r == 0x09 }); i < 0 {
		t.Fatal("no separators in frame")
	}
	for _, c := range frame[10 : len(frame)-6] {
		if c < 0x20 && c != 0x09 && c != 0x10 {
			t.Fatalf("raw control byte %02X in frame % X", c, frame)
		}
	}
}

func TestAmounts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"12.00", 1200}, {"0.5", 50}, {"-111016", -11101600}, {"1.005", 101}, {"", 0}, {"3", 300}} {
		got, err := datecs.ParseAmount(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseAmount(%q)=%d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	if got, want := datecs.FormatQty(1500), "1.5"; got != want {
		t.Errorf("FormatQty(1500)=%q, want %q", got, want)
	}
	if got, want := datecs.FormatAmount(-5), "-0.05"; got != want {
		t.Errorf("FormatAmount(-5)=%q, want %q", got, want)
	}
}
