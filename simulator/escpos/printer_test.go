package escpos_test

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/escpos"
)

// serve starts sim on loopback TCP and returns a connection to it. The
// test speaks raw bytes from the ESC/POS reference, not the driver.
func serve(t *testing.T, sim *escpos.Printer) net.Conn {
	t.Helper()
	srv, err := simulator.ServeTCP(context.Background(), "127.0.0.1:0", sim.Handle, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); srv.Close() })
	return c
}

func send(t *testing.T, c net.Conn, hexs string) {
	t.Helper()
	if _, err := c.Write(unhex(t, hexs)); err != nil {
		t.Fatal(err)
	}
}

// expect reads exactly the bytes in hexs within 3 s.
func expect(t *testing.T, c net.Conn, hexs string) {
	t.Helper()
	want := unhex(t, hexs)
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %d bytes: %v (got % X)", len(want), err, got)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("printer sent % X, want % X", got, want)
	}
}

// expectNothing checks that nothing arrives within d.
func expectNothing(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	var b [16]byte
	if n, _ := c.Read(b[:]); n > 0 {
		t.Fatalf("printer sent % X, want nothing", b[:n])
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// "DLE EOT Transmit real-time status": answered at once, also offline.
func TestRealtimeStatus(t *testing.T) {
	sim := escpos.New(escpos.Options{})
	c := serve(t, sim)
	send(t, c, "10 04 01 10 04 02 10 04 03 10 04 04")
	expect(t, c, "12 12 12 12")
	sim.SetPaperOut(true)
	send(t, c, "10 04 01 10 04 02 10 04 03 10 04 04")
	// Offline and waiting for recovery; stopped by paper end; no error; near end and end.
	expect(t, c, "3A 32 12 7E")
	sim.SetPaperOut(false)
	sim.SetCoverOpen(true)
	send(t, c, "10 04 02")
	expect(t, c, "16")
}

// "GS a": the first status goes out when enabled, then one per change.
func TestAutomaticStatusBack(t *testing.T) {
	sim := escpos.New(escpos.Options{})
	c := serve(t, sim)
	send(t, c, "1D 61 0E")
	expect(t, c, "10 00 00 00")
	sim.SetPaperOut(true)
	expect(t, c, "18 00 0F 00")
	sim.SetPaperOut(false)
	expect(t, c, "10 00 00 00")
	sim.SetCoverOpen(true)
	expect(t, c, "38 00 00 00")
	sim.SetCoverOpen(false)
	expect(t, c, "10 00 00 00")
	send(t, c, "1D 61 00 1D 72 01") // disabled: no more messages (GS r: processed)
	expect(t, c, "00")
	sim.SetPaperNearEnd(true)
	expectNothing(t, c, 100*time.Millisecond)
}

// Paper runs out mid-receipt: the printer stops, holds the rest and the
// GS r after it, answers real-time requests, and goes on with paper in.
func TestPaperOutMidReceipt(t *testing.T) {
	sim := escpos.New(escpos.Options{})
	c := serve(t, sim)
	sim.PaperOutAfter(1)
	send(t, c, "1B 40 41 0A 42 0A 1D 56 42 00 1D 72 01") // "A" LF "B" LF cut, GS r 1
	waitFor(t, "the paper to run out", func() bool { return sim.Held() > 0 })
	send(t, c, "10 04 04")
	expect(t, c, "7E") // the GS r is held; only the real-time answer comes
	if n := len(sim.Journal()); n != 0 {
		t.Fatalf("journal has %d receipts while the first is half printed", n)
	}
	sim.SetPaperOut(false)
	expect(t, c, "00") // GS r 1: processed now, paper present
	j := sim.Journal()
	if len(j) != 1 || len(j[0].Lines) != 2 || j[0].Lines[0].Text != "A" || j[0].Lines[1].Text != "B" {
		t.Fatalf("journal = %+v, want one receipt A, B", j)
	}
}

// The receipt as printed: CP852 letters decoded, modes kept, the QR
// payload decoded from GS ( k function 180, rendered as text and PNG.
func TestReceiptRender(t *testing.T) {
	got := make(chan escpos.Receipt, 1)
	sim := escpos.New(escpos.Options{OnReceipt: func(r escpos.Receipt) { got <- r }})
	c := serve(t, sim)
	url := "https://efitest.tax.gov.me/ic/#/verify?iic=ABC&tin=12345678"
	k := len(url) + 3
	send(t, c, "1B 40 1B 74 12 1B 61 01 1B 45 01 1D 21 11 9F 86 E7 A7 D0 0A 1B 61 00 1B 45 00 1D 21 00 49 0A"+
		"1D 28 6B 04 00 31 41 32 00 1D 28 6B 03 00 31 43 06 1D 28 6B 03 00 31 45 31")
	c.Write(append([]byte{0x1d, 0x28, 0x6b, byte(k), byte(k >> 8), 0x31, 0x50, 0x30}, url...))
	send(t, c, "1D 28 6B 03 00 31 51 30 0A 1D 56 42 00")
	var r escpos.Receipt
	select {
	case r = <-got:
	case <-time.After(3 * time.Second):
		t.Fatal("no receipt")
	}
	if l := r.Lines[0]; l.Text != "čćšžđ" || !l.Bold || !l.Double || l.Align != 1 {
		t.Errorf("line 1 = %+v, want čćšžđ bold double centred", l)
	}
	if qr := r.QRPayloads(); len(qr) != 1 || qr[0] != url {
		t.Errorf("QR payloads = %q, want [%q]", qr, url)
	}
	if txt := r.Text(); !strings.Contains(txt, "č ć š ž đ") || !strings.Contains(txt, "[QR] "+url) || !strings.Contains(txt, "█") {
		t.Errorf("text render lacks the letters, the payload or the drawn QR:\n%s", txt)
	}
	b, err := r.PNG()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if w := img.Bounds().Dx(); w != 42*12+32 {
		t.Errorf("PNG width %d, want 42 columns of 12 dots plus margins", w)
	}
}

// The journal keeps the last Journal receipts only.
func TestJournalBounded(t *testing.T) {
	sim := escpos.New(escpos.Options{Journal: 3})
	c := serve(t, sim)
	for range 5 {
		send(t, c, "41 0A 1D 56 42 00")
	}
	send(t, c, "1D 72 01")
	expect(t, c, "00")
	j := sim.Journal()
	if len(j) != 3 || j[0].Seq != 3 || j[2].Seq != 5 {
		t.Fatalf("journal = %d receipts from %d, want 3 to 5", len(j), j[0].Seq)
	}
	if got := sim.Counters().Receipts; got != 5 {
		t.Errorf("Receipts = %d, want 5", got)
	}
}
