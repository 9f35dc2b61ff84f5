package datecs_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/posgate/posgate/device/datecs"
)

// FuzzParseFiscalQR: the QR answer of 4Ah option 1 never panics the
// parser, and what parses prints back to a string that parses the same.
func FuzzParseFiscalQR(f *testing.F) {
	for _, s := range []string{"02517985*0000001*2026-11-21*17:05:43*39.00", "1*1*2000-01-01*00:00:00*0.00",
		"02517985*0000001*2026-11-21*17:05:43", "*1*2026-11-21*17:05:43*1.00", "02517985*x*2026-11-21*17:05:43*1.00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := datecs.ParseFiscalQR(s, time.UTC)
		if err != nil {
			return
		}
		again, err := datecs.ParseFiscalQR(q.String(), time.UTC)
		if err != nil || again.FiscalMemory != q.FiscalMemory || again.Number != q.Number ||
			!again.Time.Equal(q.Time) || again.Amount != q.Amount {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, q, q.String(), again, err)
		}
	})
}

// FuzzParseLastDocument: the fields of a 4Ah option 0 answer never panic
// the parser; a parse is deterministic.
func FuzzParseLastDocument(f *testing.F) {
	f.Add("0\t0\t1\t39.00\t1\t21-11-26 17:05:43\t")
	f.Add("1\t1\t2\t\t\t\t")
	f.Add("0\t5\t9999999\t-1.00\t\t21-11-26 17:05:43 DST\t")
	f.Add("x\t\t")
	f.Fuzz(func(t *testing.T, data string) {
		fields := datecs.Fields([]byte(data))
		d, err := datecs.ParseLastDocument(fields, time.UTC)
		d2, err2 := datecs.ParseLastDocument(fields, time.UTC)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(d, d2) {
			t.Fatalf("not deterministic: %+v %v / %+v %v", d, err, d2, err2)
		}
		if err == nil && len(fields) < 3 && d.Number != 0 {
			t.Fatalf("%q gave number %d without the field", data, d.Number)
		}
	})
}
