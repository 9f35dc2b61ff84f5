package webhook

import (
	"math/rand/v2"
	"testing"
	"time"
)

// appendTimestamp writes exactly what time.AppendFormat writes with the
// body's layout, inside years 0 to 9999 (digit by digit) and outside
// them (through AppendFormat), truncating to milliseconds as the layout
// does, whatever location the time was made in.
func TestAppendTimestampIsAppendFormat(t *testing.T) {
	cases := []time.Time{
		time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 1e6, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 6, 15, 12, 30, 45, 5e5, time.UTC),
		time.Date(2026, 3, 29, 2, 30, 0, 0, time.FixedZone("CEST", 2*3600)),
		time.UnixMilli(1 << 52),
		{},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		cases = append(cases, time.Unix(rng.Int64N(400000000000)-62135596800, rng.Int64N(1e9)))
	}
	for _, c := range cases {
		for _, tm := range []time.Time{c, c.UTC()} {
			want := tm.AppendFormat([]byte("x"), timestampLayout)
			if got := appendTimestamp([]byte("x"), tm); string(got) != string(want) {
				t.Fatalf("appendTimestamp(%v) = %q, AppendFormat %q", tm, got, want)
			}
		}
	}
}

func BenchmarkAppendTimestamp(b *testing.B) {
	tm := time.Now().UTC()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = appendTimestamp(buf[:0], tm)
	}
}
