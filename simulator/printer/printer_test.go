package printer_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/printer"
)

// line is the host end of a connection to a served simulator.
type line struct {
	t *testing.T
	c net.Conn
}

func serve(t *testing.T, sim *printer.Printer) *line {
	t.Helper()
	host, dev := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sim.Serve(ctx, dev); err != nil && !errors.Is(err, simulator.ErrHangup) {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); host.Close(); wg.Wait() })
	return &line{t: t, c: host}
}

func (l *line) send(seq byte, cmd uint16, fields ...string) []byte {
	l.t.Helper()
	var data []byte
	if fields != nil {
		data = datecs.Params(fields...)
	}
	b, err := datecs.Encode(datecs.Msg{Seq: seq, Cmd: cmd, Data: data})
	if err != nil {
		l.t.Fatal(err)
	}
	l.write(b)
	return b
}

func (l *line) write(b []byte) {
	l.t.Helper()
	l.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	if _, err := l.c.Write(b); err != nil {
		l.t.Fatalf("write: %v", err)
	}
}

// read returns the bytes up to and including the next ETX, or a lone
// NAK, or what came before a second of silence.
func (l *line) read() []byte {
	l.t.Helper()
	var out []byte
	b := make([]byte, 1)
	for {
		l.c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := l.c.Read(b); err != nil {
			return out
		}
		out = append(out, b[0])
		if b[0] == 0x03 || (len(out) == 1 && b[0] == 0x15) {
			return out
		}
	}
}

func (l *line) answer(want uint16) (datecs.Msg, []string) {
	l.t.Helper()
	raw := l.read()
	m, _, err := datecs.Decode(bytes.TrimLeft(raw, "\x16"))
	if err != nil || !m.IsAnswer() || m.Cmd != want {
		l.t.Fatalf("answer % X: %+v, %v", raw, m, err)
	}
	return m, datecs.Fields(m.Data)
}

func TestNAKOnBadChecksum(t *testing.T) {
	sim := printer.New(printer.Options{})
	l := serve(t, sim)
	b, _ := datecs.Encode(datecs.Msg{Seq: 0x20, Cmd: 0x4A})
	b[len(b)-2]++
	l.write(b)
	if got := l.read(); !bytes.Equal(got, []byte{0x15}) {
		t.Fatalf("got % X, want NAK", got)
	}
	if n := sim.Executed(); n != 0 {
		t.Fatalf("executed %d frames", n)
	}
}

func TestReplayOnRepeatedSeq(t *testing.T) {
	sim := printer.New(printer.Options{})
	l := serve(t, sim)
	l.send(0x21, datecs.CmdOpen, "1", "0000", "1", "")
	first := l.read()
	l.send(0x21, datecs.CmdOpen, "1", "0000", "1", "")
	if again := l.read(); !bytes.Equal(first, again) {
		t.Fatalf("replay % X, want % X", again, first)
	}
	if n, c := sim.Executed(), sim.Counters(); n != 1 || c.Slip != 1 {
		t.Fatalf("executed %d, counters %+v; want the open done once", n, c)
	}
	// A new SEQ executes: a second open is refused, receipt open.
	l.send(0x22, datecs.CmdOpen, "1", "0000", "1", "")
	m, f := l.answer(datecs.CmdOpen)
	if f[0] != "-111004" || !datecs.Has(m.Status, datecs.BitNotPermitted) || !datecs.Has(m.Status, datecs.BitReceiptOpen) {
		t.Fatalf("answer %q status % X", f, m.Status)
	}
}

func TestSYNWhileBusy(t *testing.T) {
	sim := printer.New(printer.Options{SynInterval: 20 * time.Millisecond})
	l := serve(t, sim)
	sim.BusyFor(200 * time.Millisecond)
	l.send(0x20, datecs.CmdStatus)
	raw := l.read()
	syns := bytes.Count(raw, []byte{0x16})
	if syns < 5 || raw[len(raw)-1] != 0x03 {
		t.Fatalf("got % X; want several SYN, then the answer", raw)
	}
}

func TestLegacyInfo(t *testing.T) {
	sim := printer.New(printer.Options{})
	l := serve(t, sim)
	// ErpNet.FP probes with "1" and no TAB and gets the comma answer.
	b, _ := datecs.Encode(datecs.Msg{Seq: 0x21, Cmd: 0x5A, Data: []byte("1")})
	l.write(b)
	m, _, err := datecs.Decode(l.read())
	if err != nil || string(m.Data) != "FP-700X,1.00BG 23Mar22 1000,ABCD,0,DT000600,02517985" {
		t.Fatalf("answer %q, %v", m.Data, err)
	}
}

func TestReceiptStateMachine(t *testing.T) {
	sim := printer.New(printer.Options{})
	l := serve(t, sim)
	seq := byte(0x20)
	do := func(cmd uint16, fields ...string) (datecs.Msg, []string) {
		t.Helper()
		seq++
		l.send(seq, cmd, fields...)
		return l.answer(cmd)
	}
	if _, f := do(datecs.CmdSale, "Tea", "2", "1.00", "1", "", "", "0"); f[0] != "-111005" {
		t.Fatalf("sale without receipt: %q", f)
	}
	do(datecs.CmdOpen, "1", "0000", "1", "")
	do(datecs.CmdSale, "Tea", "2", "1.00", "3", "4", "0.50", "0")
	if _, f := do(datecs.CmdSubtotal, "1", "0", "2", "10.00"); f[2] != "2.25" || f[4] != "2.25" {
		t.Fatalf("subtotal %q, want 2.25 in total and group B", f)
	}
	if _, f := do(datecs.CmdPayment, "1", "1.00", ""); f[1] != "D" || f[2] != "1.25" {
		t.Fatalf("payment %q, want 1.25 due", f)
	}
	if _, f := do(datecs.CmdCancel); f[0] != "-111003" {
		t.Fatalf("cancel after payment: %q", f)
	}
	if _, f := do(datecs.CmdSale, "Tea", "2", "1.00", "1", "", "", "0"); f[0] != "-111003" {
		t.Fatalf("sale after payment: %q", f)
	}
	if _, f := do(datecs.CmdClose); f[0] != "-111009" {
		t.Fatalf("close unpaid: %q", f)
	}
	if _, f := do(datecs.CmdPayment, "", "", ""); f[1] != "R" || f[2] != "0.00" {
		t.Fatalf("pay rest: %q", f)
	}
	if _, f := do(datecs.CmdTransaction); strings.Join(f, ",") != "0,1,1,1,2.25,2.25" {
		t.Fatalf("4Ch open: %q", f)
	}
	do(datecs.CmdClose)
	if _, f := do(datecs.CmdTransaction); strings.Join(f, ",") != "0,0,1,1,2.25,2.25" {
		t.Fatalf("4Ch after close: %q", f)
	}
	if _, f := do(datecs.CmdLastReceipt, "3"); f[1] != "1" || f[3] != "0" {
		t.Fatalf("7Bh: %q", f)
	}
	if _, f := do(0x99); f[0] != "-111002" {
		t.Fatalf("unknown command: %q", f)
	}
	if _, f := do(0x64, "-111002"); f[2] != "Invalid command" {
		t.Fatalf("64h: %q", f)
	}
	c := sim.Counters()
	if c.Fiscal != 1 || c.Totals[1] != 225 || c.CashSum != 125 {
		t.Fatalf("counters %+v", c)
	}
}

func TestFaults(t *testing.T) {
	sim := printer.New(printer.Options{})
	l := serve(t, sim)
	t.Run("PaperOut", func(t *testing.T) {
		sim.SetPaperOut(true)
		defer sim.SetPaperOut(false)
		l.send(0x30, datecs.CmdOpen, "1", "0000", "1", "")
		m, f := l.answer(datecs.CmdOpen)
		if f[0] != "-111006" || !datecs.Has(m.Status, datecs.BitPaperOut) || !datecs.Has(m.Status, datecs.BitGeneralError) {
			t.Fatalf("%q % X", f, m.Status)
		}
		// Queries still answer, with the bit set.
		l.send(0x31, datecs.CmdStatus)
		if m, f := l.answer(datecs.CmdStatus); f[0] != "0" || !datecs.Has(m.Status, datecs.BitPaperOut) {
			t.Fatalf("%q % X", f, m.Status)
		}
	})
	t.Run("DropAnswers", func(t *testing.T) {
		sim.DropAnswers(1)
		l.send(0x40, datecs.CmdStatus)
		if got := l.read(); len(got) != 0 {
			t.Fatalf("got % X, want the answer lost", got)
		}
		l.send(0x40, datecs.CmdStatus) // the host's resend
		l.answer(datecs.CmdStatus)
	})
	t.Run("Garbage", func(t *testing.T) {
		sim.Garbage(10)
		l.send(0x41, datecs.CmdStatus)
		// The noise may hold an ETX; read until the answer decodes.
		var raw []byte
		for i := 0; i < 5; i++ {
			raw = append(raw, l.read()...)
			if j := bytes.IndexByte(raw, 0x01); j >= 0 {
				if m, _, err := datecs.Decode(raw[j:]); err == nil && m.Cmd == datecs.CmdStatus {
					if j < 10 {
						t.Fatalf("got % X, want 10 bytes of noise first", raw)
					}
					return
				}
			}
		}
		t.Fatalf("got % X, want noise then the answer", raw)
	})
	t.Run("DropLine", func(t *testing.T) {
		sim.DropLineAfter(datecs.CmdStatus)
		l.send(0x42, datecs.CmdStatus)
		if got := l.read(); len(got) != 0 {
			t.Fatalf("got % X on a dropped line", got)
		}
	})
}

func TestRenderReports(t *testing.T) {
	var docs []printer.Document
	var mu sync.Mutex
	sim := printer.New(printer.Options{OnDocument: func(d printer.Document) {
		mu.Lock()
		defer mu.Unlock()
		docs = append(docs, d)
	}})
	l := serve(t, sim)
	l.send(0x20, datecs.CmdCash, "0", "50.00")
	l.answer(datecs.CmdCash)
	l.send(0x21, datecs.CmdReport, "Z")
	_, f := l.answer(datecs.CmdReport)
	if f[1] != "1" {
		t.Fatalf("Z answer %q", f)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(docs) != 2 || docs[0].Kind != printer.KindCashIn || docs[1].Kind != printer.KindZReport ||
		!strings.Contains(docs[1].Text, "Z REPORT No 0001") || !strings.Contains(docs[1].Text, "CASH IN") {
		t.Fatalf("documents %+v", docs)
	}
	if j := sim.Journal(); len(j) != 2 || j[1].Number != 1 {
		t.Fatalf("journal %+v", j)
	}
}

// A long run keeps a bounded journal: at most Options.Journal documents,
// the newest, while the counters go on.
func TestJournalStaysBounded(t *testing.T) {
	const max, docs = 8, 50
	sim := printer.New(printer.Options{Journal: max})
	l := serve(t, sim)
	for i := range docs {
		l.send(byte(0x20+i%0x5F), datecs.CmdCash, "0", "1.00")
		l.answer(datecs.CmdCash)
		if n := len(sim.Journal()); n > max {
			t.Fatalf("after %d documents the journal holds %d, want at most %d", i+1, n, max)
		}
	}
	j := sim.Journal()
	if len(j) < max*3/4 {
		t.Fatalf("journal holds %d, want the newest %d or more", len(j), max*3/4)
	}
	for i, d := range j {
		if want := docs - len(j) + 1 + i; d.Slip != want {
			t.Fatalf("journal[%d] is slip %d, want %d (the newest, in order)", i, d.Slip, want)
		}
	}
	if c := sim.Counters(); c.Slip != docs || c.CashSum != docs*100 {
		t.Fatalf("counters %+v, want slip %d cash %d", c, docs, docs*100)
	}
}
