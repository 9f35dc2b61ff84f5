package printer_test

import (
	"testing"

	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
)

func TestParseVATRates(t *testing.T) {
	const off = datecs.RateDisabled
	got, err := printer.ParseVATRates("A=0,B=21,C=7,d=20")
	if want := [8]int64{0, 2100, 700, 2000, off, off, off, off}; err != nil || got != want {
		t.Fatalf("ParseVATRates=%v, %v; want %v", got, err, want)
	}
	if got, err := printer.ParseVATRates(" H = 9.5 "); err != nil || got[7] != 950 || got[0] != off {
		t.Fatalf("ParseVATRates(H=9.5)=%v, %v", got, err)
	}
	for _, bad := range []string{"", "A", "I=5", "A=100", "A=-1", "A=5.555", "A=1,A=2", "AB=1", "A=x"} {
		if _, err := printer.ParseVATRates(bad); err == nil {
			t.Errorf("ParseVATRates(%q) accepted", bad)
		}
	}
}

func FuzzParseVATRates(f *testing.F) {
	f.Add("A=0,B=21,C=7,D=20")
	f.Add("H=99.99")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := printer.ParseVATRates(s)
		if err != nil {
			return
		}
		for _, r := range v {
			if r < 0 || r > datecs.RateDisabled {
				t.Fatalf("ParseVATRates(%q)=%v", s, v)
			}
		}
	})
}
