package zvt_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/posgate/posgate/device/zvt"
)

// seeds adds every golden frame, and its APDU and data block, to f.
func seeds(f *testing.F, part func(frame []byte) []byte) {
	files, _ := filepath.Glob(filepath.Join("testdata", "frames", "*.bin"))
	if len(files) == 0 {
		f.Fatal("no seeds in testdata/frames")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(part(b))
	}
}

func apduOf(frame []byte) []byte {
	raw, _, _ := zvt.DecodeFrame(frame)
	return raw
}

func dataOf(frame []byte) []byte {
	a, _, _ := zvt.DecodeAPDU(apduOf(frame))
	return a.Data
}

func FuzzDecodeFrame(f *testing.F) {
	seeds(f, func(b []byte) []byte { return b })
	f.Fuzz(func(t *testing.T, in []byte) {
		raw, rest, err := zvt.DecodeFrame(in)
		if len(rest) > len(in) {
			t.Fatalf("rest %d > input %d", len(rest), len(in))
		}
		if err != nil {
			return
		}
		enc := zvt.EncodeFrame(raw)
		back, rest2, err := zvt.DecodeFrame(enc)
		if err != nil || len(rest2) != 0 || !bytes.Equal(back, raw) {
			t.Fatalf("round trip: % X → % X → % X (%v)", raw, enc, back, err)
		}
	})
}

func FuzzDecodeAPDU(f *testing.F) {
	seeds(f, apduOf)
	f.Fuzz(func(t *testing.T, in []byte) {
		a, rest, err := zvt.DecodeAPDU(in)
		if len(rest) > len(in) {
			t.Fatalf("rest %d > input %d", len(rest), len(in))
		}
		if err != nil {
			return
		}
		back, rest2, err := zvt.DecodeAPDU(a.Encode())
		if err != nil || len(rest2) != 0 || back.Command() != a.Command() || !bytes.Equal(back.Data, a.Data) {
			t.Fatalf("round trip % X: %v", in, err)
		}
		_ = zvt.Describe(a) // must not panic either
		_ = zvt.Masked(a)
	})
}

func FuzzDecodeFields(f *testing.F) {
	seeds(f, dataOf)
	f.Add([]byte{0x06, 0x82, 0x00, 0x03, 0x07, 0x01, 0x41, 0x22, 0xF0, 0xF2, 0x12, 0x34})
	f.Fuzz(func(t *testing.T, in []byte) {
		fld, rest, err := zvt.DecodeField(in)
		if len(rest) > len(in) {
			t.Fatalf("rest %d > input %d", len(rest), len(in))
		}
		if err == nil {
			back, rest2, err := zvt.DecodeField(zvt.AppendField(nil, fld))
			if err != nil || len(rest2) != 0 || back.BMP != fld.BMP || !bytes.Equal(back.Value, fld.Value) {
				t.Fatalf("round trip % X: %v", in, err)
			}
		}
		fs, err := zvt.DecodeFields(in)
		if err != nil {
			return
		}
		back, err := zvt.DecodeFields(zvt.AppendFields(nil, fs))
		if err != nil || !reflect.DeepEqual(normalize(back), normalize(fs)) {
			t.Fatalf("round trip % X: %v", in, err)
		}
	})
}

func FuzzDecodeTLV(f *testing.F) {
	f.Add([]byte{0x1F, 0x07, 0x01, 0x02})
	f.Add([]byte{0x25, 0x81, 0x03, 0x07, 0x01, 0x41})
	f.Add([]byte{0x26, 0x82, 0x00, 0x02, 0x0A, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		tl, rest, err := zvt.DecodeTLV(in)
		if len(rest) > len(in) {
			t.Fatalf("rest %d > input %d", len(rest), len(in))
		}
		if err != nil {
			return
		}
		back, rest2, err := zvt.DecodeTLV(zvt.AppendTLV(nil, tl))
		if err != nil || len(rest2) != 0 || back.Tag != tl.Tag || !bytes.Equal(back.Value, tl.Value) {
			t.Fatalf("round trip % X: %+v → %+v (%v)", in, tl, back, err)
		}
	})
}

// normalize treats nil and empty values alike.
func normalize(fs []zvt.Field) []zvt.Field {
	out := make([]zvt.Field, len(fs))
	for i, f := range fs {
		out[i] = zvt.Field{BMP: f.BMP, Value: append([]byte{}, f.Value...)}
	}
	return out
}
