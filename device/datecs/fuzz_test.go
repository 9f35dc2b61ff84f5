package datecs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/posgate/posgate/device/datecs"
)

// FuzzDecode checks the frame decoder of both profiles: it never panics,
// rest is never longer than the input, and a decoded frame encodes back to
// exactly the bytes it came from and decodes to the same Msg.
func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "datecs", "*.bin"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
		f.Add(append(b, b...), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, isl bool) {
		p := datecs.X
		if isl {
			p = datecs.ISL
		}
		m, rest, err := p.Decode(b)
		if len(rest) > len(b) {
			t.Fatalf("rest %d bytes longer than input %d", len(rest), len(b))
		}
		if err != nil {
			return
		}
		consumed := b[:len(b)-len(rest)]
		enc, err := p.Encode(m)
		if err != nil {
			t.Fatalf("Encode(decoded %+v): %v", m, err)
		}
		if !bytes.Equal(enc, consumed) {
			t.Fatalf("Encode=% X\nconsumed % X", enc, consumed)
		}
		m2, rest2, err := p.Decode(enc)
		if err != nil || len(rest2) != 0 || !reflect.DeepEqual(m, m2) {
			t.Fatalf("Decode(Encode(m))=%+v, %q, %v; want %+v", m2, rest2, err, m)
		}
	})
}
