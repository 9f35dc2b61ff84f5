package printer_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posgate/posgate/simulator/printer"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestRenderReceiptGolden(t *testing.T) {
	at := time.Date(2026, 11, 21, 17, 5, 43, 0, time.UTC)
	sim := printer.New(printer.Options{Now: func() time.Time { return at }, Location: time.UTC})
	l := serve(t, sim)
	seq := byte(0x20)
	for _, req := range [][]string{
		{"30", "1", "0000", "DT000600-0001-0000042", "1", ""},
		{"31", "Cheese", "2", "12.00", "2", "", "", "0"},
		{"36", "Fresh from the farm", "", "", "", "", ""},
		{"31", "Milk", "2", "10.00", "1.5", "2", "10.00", "0"},
		{"31", "Хляб", "4", "2.50", "1", "", "", "0"},
		{"33", "1", "0", "4", "1.00"},
		{"35", "1", "20.00", ""},
		{"35", "0", "30.00", ""},
		{"36", "IIC E4033D471FEEA47A3C664B15C669C709", "", "", "", "", ""},
		{"38"},
	} {
		seq++
		var cmd uint16
		for _, c := range req[0] {
			cmd = cmd<<4 | uint16(c-'0')
		}
		l.send(seq, cmd, req[1:]...)
		if _, f := l.answer(cmd); f[0] != "0" {
			t.Fatalf("%X: %q", cmd, f)
		}
	}
	recs := sim.Receipts()
	if len(recs) != 1 {
		t.Fatalf("%d receipts", len(recs))
	}
	golden := filepath.Join("testdata", "receipt.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(recs[0].Text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Text != string(want) {
		t.Fatalf("receipt:\n%s\nwant:\n%s", recs[0].Text, want)
	}
}
