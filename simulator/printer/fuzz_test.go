package printer_test

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"

	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
)

// script encodes requests as the fuzzer's input: command byte, data length, data.
func script(reqs ...[]string) []byte {
	var b []byte
	for _, r := range reqs {
		// r[0] is the command in hex; "2B" and "4A" were read digit by
		// digit as decimal before, which made other commands of them.
		c, err := strconv.ParseUint(r[0], 16, 8)
		if err != nil {
			panic(err)
		}
		cmd := byte(c)
		d := datecs.Params(r[1:]...)
		b = append(b, cmd, byte(len(d)))
		b = append(b, d...)
	}
	return b
}

type lineRW struct {
	in  io.Reader
	out bytes.Buffer
}

func (l *lineRW) Read(p []byte) (int, error)  { return l.in.Read(p) }
func (l *lineRW) Write(p []byte) (int, error) { return l.out.Write(p) }

// FuzzServe feeds any sequence of well-framed requests to the simulator:
// it must never panic, and must answer every request with a valid frame.
func FuzzServe(f *testing.F) {
	f.Add(script([]string{"30", "1", "0000", "1", ""}, []string{"31", "Tea", "2", "1.00", "3", "2", "10", "0"},
		[]string{"33", "1", "0", "4", "0.10"}, []string{"35", "1", "1.00", ""}, []string{"35", "", "", ""},
		[]string{"38"}, []string{"45", "Z"}))
	f.Add(script([]string{"2B", "1", "0000", "1", "1", "5", "", "", "", "", "", ""}, []string{"31", "x", "8", "99999999.99", "999999.999", "1", "999.99", "0"},
		[]string{"46", "1", "5.00"}, []string{"4C"}, []string{"7B", "3"}, []string{"3D", "31-12-99 23:59:59"}))
	// Bulgaria: open with a UNP, sell, pay, close, read 4Ah options 0/1,
	// duplicate twice, reuse the UNP.
	f.Add(script([]string{"30", "1", "0000", "DT000600-0001-0000001", "1", ""}, []string{"31", "Tea", "2", "1.00", "1", "", "", "0"},
		[]string{"35", "0", "1.00", ""}, []string{"38"}, []string{"4A", "0"}, []string{"4A", "1"}, []string{"6D"}, []string{"6D"},
		[]string{"30", "1", "0000", "DT000600-0001-0000001", "1", ""}, []string{"4A", "2"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var frames []byte
		seq := byte(0x20)
		n := 0
		for len(b) >= 2 {
			cmd, l := b[0], int(b[1])
			b = b[2:]
			l = min(l, len(b), 200)
			data := bytes.Map(func(r rune) rune {
				if r == 0x04 || r == 0x05 {
					return '?'
				}
				return r
			}, b[:l])
			b = b[l:]
			if len(data) > datecs.MaxData {
				continue
			}
			fr, err := datecs.Encode(datecs.Msg{Seq: seq, Cmd: uint16(cmd), Data: data})
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, fr...)
			seq++
			if seq < 0x20 {
				seq = 0x20
			}
			n++
		}
		sim := printer.New(printer.Options{})
		rw := &lineRW{in: bytes.NewReader(frames)}
		if err := sim.Serve(context.Background(), rw); err != nil {
			t.Fatal(err)
		}
		out := rw.out.Bytes()
		for i := 0; i < n; i++ {
			m, rest, err := datecs.Decode(out)
			if err != nil || !m.IsAnswer() {
				t.Fatalf("answer %d of %d: %v in % X", i+1, n, err, out)
			}
			out = rest
		}
	})
}
