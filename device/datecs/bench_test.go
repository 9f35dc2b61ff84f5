package datecs_test

import (
	"testing"

	"github.com/posgate/posgate/device/datecs"
)

func BenchmarkEncode(b *testing.B) {
	m := datecs.Msg{Seq: 0x20, Cmd: 0x31, Data: datecs.Params("Cheese", "2", "12.00", "1", "", "", "0")}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = datecs.X.AppendEncode(buf[:0], m); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecode(b *testing.B) {
	frame := readVector(b, "x-open-ans")
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, _, err := datecs.Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParams(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		datecs.Fields(datecs.Params("Хляб ръжен", "2", "12.00", "1.5", "2", "10.00", "0"))
	}
}
