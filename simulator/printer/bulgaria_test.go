package printer_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
)

// golden reads a frame of the Datecs X programmer's manual v2.08 from the
// driver's testdata (built by testdata/datecs/bg-vectors.py from the
// manual's low-level protocol, not by the codec).
func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "device", "datecs", "testdata", "datecs", name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exchangeRaw writes a golden request and returns the raw answer, SYNs dropped.
func (l *line) exchangeRaw(req []byte) []byte {
	l.t.Helper()
	l.write(req)
	return bytes.TrimLeft(l.read(), "\x16")
}

// TestBulgarianCommandsGolden drives the simulator with the manual's
// frames and compares its answers byte for byte where the manual fixes
// them: 30h syntax 2 (p.10), 4Ah options 0 and 1 (p.23-24), 6Dh (p.34),
// 3Dh (p.18).
func TestBulgarianCommandsGolden(t *testing.T) {
	at := time.Date(2026, 11, 21, 17, 5, 43, 0, time.UTC)
	sim := printer.New(printer.Options{Now: func() time.Time { return at }, Location: time.UTC})
	l := serve(t, sim)

	t.Run("NoReceiptYet", func(t *testing.T) {
		// 4Ah option 0 before any fiscal receipt: no QR fields.
		m, _, err := datecs.Decode(l.exchangeRaw(golden(t, "bg-lastdoc-req")))
		if err != nil || string(m.Data) != "0\t0\t0\t0\t\t\t\t" {
			t.Fatalf("answer %q, %v", m.Data, err)
		}
	})
	t.Run("OpenWithUNP", func(t *testing.T) {
		m, _, err := datecs.Decode(l.exchangeRaw(golden(t, "bg-open-unp-req")))
		if err != nil || string(m.Data) != "0\t1\t" {
			t.Fatalf("answer %q, %v", m.Data, err)
		}
		seq := byte(0x30)
		for _, req := range [][]string{{"31", "Cheese", "2", "39.00", "1", "", "", "0"}, {"35", "0", "39.00", ""}, {"38"}} {
			seq++
			cmd, _ := strconv.ParseUint(req[0], 16, 16)
			l.send(seq, uint16(cmd), req[1:]...)
			if _, f := l.answer(uint16(cmd)); f[0] != "0" {
				t.Fatalf("%s: %q", req[0], f)
			}
		}
		rec := sim.Receipts()[0]
		if rec.UniqueSaleNumber != "DT000600-0001-0000042" || rec.QR != "02517985*0000001*2026-11-21*17:05:43*39.00" ||
			!strings.Contains(rec.Text, "DT000600-0001-0000042") || !strings.Contains(rec.Text, "QR "+rec.QR) {
			t.Fatalf("receipt %+v:\n%s", rec, rec.Text)
		}
	})
	for _, name := range []string{"bg-lastdoc", "bg-qr", "bg-duplicate"} {
		t.Run(name, func(t *testing.T) {
			if got, want := l.exchangeRaw(golden(t, name+"-req")), golden(t, name+"-ans"); !bytes.Equal(got, want) {
				t.Fatalf("answer % X\nwant   % X", got, want)
			}
		})
	}
	t.Run("DuplicatePrinted", func(t *testing.T) {
		j := sim.Journal()
		d := j[len(j)-1]
		if d.Kind != printer.KindDuplicate || d.Number != 1 || d.QR != "" || !strings.Contains(d.Text, "DUPLICATE") || strings.Contains(d.Text, "QR ") {
			t.Fatalf("%+v:\n%s", d, d.Text)
		}
		l.send(0x40, datecs.CmdDuplicate)
		if m, f := l.answer(datecs.CmdDuplicate); f[0] != strconv.Itoa(printer.CodeNoDuplicate) || m.Status[1]&0x02 == 0 {
			t.Fatalf("second duplicate: %q, status % X", f, m.Status)
		}
	})
	t.Run("UNPReused", func(t *testing.T) {
		m, _, err := datecs.Decode(l.exchangeRaw(golden(t, "bg-open-unp-req")))
		if err != nil || string(m.Data) != strconv.Itoa(printer.CodeUNPUsed)+"\t" || m.Status[1]&0x02 == 0 {
			t.Fatalf("answer %q status % X, %v; want CodeUNPUsed, bit 1.1", m.Data, m.Status, err)
		}
		// A storno of that sale carries its UNP and is accepted.
		l.send(0x41, datecs.CmdStorno, "1", "0000", "1", "1", "1", "21-11-26 17:05:43", "02517985", "", "", "", "DT000600-0001-0000042")
		if _, f := l.answer(datecs.CmdStorno); f[0] != "0" {
			t.Fatalf("storno: %q", f)
		}
		l.send(0x42, datecs.CmdCancel)
		l.answer(datecs.CmdCancel)
	})
	t.Run("UNPForm", func(t *testing.T) {
		l.send(0x43, datecs.CmdOpen, "1", "0000", "DT000600-0001-42", "1", "")
		if m, f := l.answer(datecs.CmdOpen); f[0] != strconv.Itoa(printer.CodeSyntax) || m.Status[0]&0x01 == 0 {
			t.Fatalf("malformed UNP: %q status % X", f, m.Status)
		}
	})
	t.Run("SetDate", func(t *testing.T) {
		m, _, err := datecs.Decode(l.exchangeRaw(golden(t, "bg-setdate-req")))
		if err != nil || string(m.Data) != "0\t" {
			t.Fatalf("answer %q, %v", m.Data, err)
		}
		l.send(0x44, datecs.CmdDateTime)
		if _, f := l.answer(datecs.CmdDateTime); f[1] != "21-07-26 10:00:00" {
			t.Fatalf("clock %q", f)
		}
	})
}
