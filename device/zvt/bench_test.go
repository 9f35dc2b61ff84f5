package zvt_test

import (
	"testing"

	"github.com/posgate/posgate/device/zvt"
)

func BenchmarkEncodeFrame(b *testing.B) {
	apdu := zvt.Authorization(1234, 978).Encode()
	b.ReportAllocs()
	b.SetBytes(int64(len(apdu)))
	for b.Loop() {
		_ = zvt.EncodeFrame(apdu)
	}
}

func BenchmarkDecodeFrame(b *testing.B) {
	frame := readGolden(b, "reversal_0010")
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, _, err := zvt.DecodeFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStatusInfo(b *testing.B) {
	a := zvt.StatusInfo(zvt.Field{BMP: 0x27, Value: []byte{0}}, zvt.BCDField(0x04, 1234, 6),
		zvt.BCDField(0x0B, 42, 3), zvt.BCDField(0x87, 7, 2), zvt.BCDField(0x49, 978, 2),
		zvt.Field{BMP: 0x22, Value: []byte{0x67, 0x99, 0x99, 0x89, 0x00, 0x00, 0x00, 0x00, 0x01, 0x9F}},
		zvt.Field{BMP: 0x8B, Value: []byte("Girocard")})
	frame := zvt.EncodeFrame(a.Encode())
	b.ReportAllocs()
	for b.Loop() {
		raw, _, _ := zvt.DecodeFrame(frame)
		apdu, _, _ := zvt.DecodeAPDU(raw)
		if _, err := zvt.ParseStatusInfo(apdu.Data); err != nil {
			b.Fatal(err)
		}
	}
}
