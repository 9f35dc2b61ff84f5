//go:build linux || darwin

package main

// An ECR written from PA00P015/PA00P016 alone, sharing no code with
// device/zvt: its own serial framing (DLE STX … DLE ETX, CRC-16 over
// APDU+ETX, ACK/NAK), its own APDU and BMP handling. It drives `posgate sim
// terminal` over TCP and over a pty through every command a cashier's
// software uses and checks that every command is answered and every master
// phase ends with Completion (06 0F) or Abort (06 1E).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ecrCRC is CRC-16 with the reflected polynomial 0x1021 (0x8408), initial
// value 0 (PA00P016 §3.1, the bytes terminals send).
func ecrCRC(b []byte) uint16 {
	var crc uint16
	for _, x := range b {
		crc ^= uint16(x)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x8408
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// ecrLine moves APDUs: bare on TCP, framed on serial.
type ecrLine interface {
	send(apdu []byte) error
	recv(deadline time.Time) ([]byte, error)
}

// deadlineRW is a connection or tty with read deadlines.
type deadlineRW interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

type ecrTCP struct{ c deadlineRW }

func (l ecrTCP) send(apdu []byte) error { _, err := l.c.Write(apdu); return err }

func (l ecrTCP) recv(deadline time.Time) ([]byte, error) {
	l.c.SetReadDeadline(deadline)
	hdr := make([]byte, 3)
	if _, err := io.ReadFull(l.c, hdr); err != nil {
		return nil, err
	}
	n := int(hdr[2])
	if n == 0xFF {
		ext := make([]byte, 2)
		if _, err := io.ReadFull(l.c, ext); err != nil {
			return nil, err
		}
		n = int(ext[0]) | int(ext[1])<<8
		hdr = append(hdr, ext...)
	}
	data := make([]byte, n)
	_, err := io.ReadFull(l.c, data)
	return append(hdr, data...), err
}

type ecrSerial struct {
	c   deadlineRW
	buf []byte
}

func (l *ecrSerial) byte1(deadline time.Time) (byte, error) {
	if len(l.buf) == 0 {
		l.c.SetReadDeadline(deadline)
		b := make([]byte, 256)
		n, err := l.c.Read(b)
		if n == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			return 0, err
		}
		l.buf = append(l.buf, b[:n]...)
	}
	x := l.buf[0]
	l.buf = l.buf[1:]
	return x, nil
}

func (l *ecrSerial) send(apdu []byte) error {
	frame := []byte{0x10, 0x02}
	for _, b := range apdu {
		if b == 0x10 {
			frame = append(frame, 0x10)
		}
		frame = append(frame, b)
	}
	crc := ecrCRC(append(append([]byte{}, apdu...), 0x03))
	frame = append(frame, 0x10, 0x03, byte(crc), byte(crc>>8))
	for try := 0; try < 3; try++ {
		if _, err := l.c.Write(frame); err != nil {
			return err
		}
		b, err := l.byte1(time.Now().Add(5 * time.Second)) // T2
		if err != nil {
			return fmt.Errorf("wait for ACK: %w", err)
		}
		switch b {
		case 0x06:
			return nil
		case 0x15:
			continue
		default:
			return fmt.Errorf("got %02X instead of ACK", b)
		}
	}
	return errors.New("three NAKs")
}

func (l *ecrSerial) recv(deadline time.Time) ([]byte, error) {
	for {
		b, err := l.byte1(deadline)
		if err != nil {
			return nil, err
		}
		if b != 0x10 {
			continue
		}
		if b, err = l.byte1(deadline); err != nil {
			return nil, err
		}
		if b != 0x02 {
			continue
		}
		var apdu []byte
		for {
			b, err := l.byte1(time.Now().Add(time.Second))
			if err != nil {
				return nil, err
			}
			if b != 0x10 {
				apdu = append(apdu, b)
				continue
			}
			if b, err = l.byte1(time.Now().Add(time.Second)); err != nil {
				return nil, err
			}
			if b == 0x10 {
				apdu = append(apdu, 0x10)
				continue
			}
			if b != 0x03 {
				return nil, fmt.Errorf("DLE %02X inside a frame", b)
			}
			lo, err1 := l.byte1(time.Now().Add(time.Second))
			hi, err2 := l.byte1(time.Now().Add(time.Second))
			if err := errors.Join(err1, err2); err != nil {
				return nil, err
			}
			if uint16(lo)|uint16(hi)<<8 != ecrCRC(append(append([]byte{}, apdu...), 0x03)) {
				l.c.Write([]byte{0x15})
				break // NAK: the terminal repeats it
			}
			if _, err := l.c.Write([]byte{0x06}); err != nil {
				return nil, err
			}
			return apdu, nil
		}
	}
}

// ecr is the application layer: commands, answers, master phases.
type ecr struct {
	t    *testing.T
	line ecrLine
	// repeatLater answers that many of the next Status-Informations with
	// 84 9C 00 ("repeat later", chapter 3.1's note): the terminal must
	// send them again after 2 s.
	repeatLater int
}

// result is what a master phase brought.
type result struct {
	infos   [][]byte // 04 0F data blocks
	lines   int      // 06 D1
	blocks  int      // 06 D3
	end     []byte   // 06 0F or 06 1E
	aborted bool
}

// bmp finds a fixed-length BMP in a 04 0F data block, knowing only the
// lengths of the BMPs a Status-Information carries (PA00P015 chapter 13).
func bmp(data []byte, want byte) []byte {
	fixed := map[byte]int{0x27: 1, 0x04: 6, 0x0B: 3, 0x37: 3, 0x0C: 3, 0x0D: 2, 0x0E: 2, 0x17: 2, 0x19: 1,
		0x29: 4, 0x3B: 8, 0x49: 2, 0x87: 2, 0x8A: 1, 0x8C: 1, 0xBA: 5, 0x2A: 15, 0xA0: 1, 0x88: 3, 0x60: -3}
	for i := 0; i < len(data); {
		b := data[i]
		i++
		n, ok := fixed[b]
		switch {
		case b == 0x22 || b == 0x8B || b == 0x4C: // LLVAR
			n = int(data[i]&0x0F)*10 + int(data[i+1]&0x0F)
			i += 2
		case b == 0x3C || b == 0x9A || n == -3: // LLLVAR
			n = int(data[i]&0x0F)*100 + int(data[i+1]&0x0F)*10 + int(data[i+2]&0x0F)
			i += 3
		case b == 0x06: // BER length
			n = int(data[i])
			i++
			if n == 0x81 {
				n, i = int(data[i]), i+1
			} else if n == 0x82 {
				n, i = int(data[i])<<8|int(data[i+1]), i+2
			}
		case !ok:
			return nil
		}
		if b == want {
			return data[i : i+n]
		}
		i += n
	}
	return nil
}

func bcdInt(b []byte) int {
	n := 0
	for _, x := range b {
		n = n*100 + int(x>>4)*10 + int(x&0x0F)
	}
	return n
}

func bcd2(n int) string { return fmt.Sprintf("%02d %02d", n/100, n%100) }

func hexAPDU(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for _, f := range strings.Fields(s) {
		var b byte
		if _, err := fmt.Sscanf(f, "%02X", &b); err != nil {
			t.Fatalf("bad hex %q", s)
		}
		out = append(out, b)
	}
	return out
}

// command sends cmd and requires 80 00 00 within T3 (5 s).
func (e *ecr) command(what, cmd string) {
	e.t.Helper()
	if err := e.line.send(hexAPDU(e.t, cmd)); err != nil {
		e.t.Fatalf("%s: send: %v", what, err)
	}
	a, err := e.line.recv(time.Now().Add(5 * time.Second))
	if err != nil {
		e.t.Fatalf("%s: unanswered: %v", what, err)
	}
	if a[0] != 0x80 || a[1] != 0x00 {
		e.t.Fatalf("%s: answered % X", what, a)
	}
}

// master serves the terminal's messages until 06 0F or 06 1E; ackEnd false
// leaves the final one unanswered.
func (e *ecr) master(what string, ackEnd bool) result {
	e.t.Helper()
	var r result
	for {
		a, err := e.line.recv(time.Now().Add(10 * time.Second))
		if err != nil {
			e.t.Fatalf("%s: terminal went quiet: %v", what, err)
		}
		cmd := uint16(a[0])<<8 | uint16(a[1])
		data := a[3:]
		if a[2] == 0xFF {
			data = a[5:]
		}
		switch cmd {
		case 0x040F:
			r.infos = append(r.infos, data)
			if e.repeatLater > 0 {
				e.repeatLater--
				if err := e.line.send([]byte{0x84, 0x9C, 0x00}); err != nil {
					e.t.Fatal(err)
				}
				continue
			}
		case 0x06D1:
			r.lines++
		case 0x06D3:
			r.blocks++
		case 0x04FF:
		case 0x060F, 0x061E:
			r.end, r.aborted = a, cmd == 0x061E
			if ackEnd {
				if err := e.line.send([]byte{0x80, 0x00, 0x00}); err != nil {
					e.t.Fatal(err)
				}
			}
			return r
		default:
			e.t.Fatalf("%s: unexpected % X", what, a)
		}
		if err := e.line.send([]byte{0x80, 0x00, 0x00}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *ecr) tx(what, cmd string) result {
	e.t.Helper()
	e.command(what, cmd)
	return e.master(what, true)
}

// approvedTx runs cmd and requires 06 0F 00 (§2.2.9 and the sections that
// refer to it) after a Status-Information with result 00.
func (e *ecr) approvedTx(what, cmd string) result {
	e.t.Helper()
	r := e.tx(what, cmd)
	if fmt.Sprintf("% X", r.end) != "06 0F 00" {
		e.t.Fatalf("%s: ended with % X, want 06 0F 00", what, r.end)
	}
	if len(r.infos) == 0 || bmp(r.infos[0], 0x27) == nil || bmp(r.infos[0], 0x27)[0] != 0 {
		e.t.Fatalf("%s: status information %v", what, r.infos)
	}
	return r
}

func (e *ecr) register(tlv string) {
	e.t.Helper()
	d := "00 00 00 BE 09 78"
	if tlv != "" {
		d += " " + tlv
	}
	e.command("registration", fmt.Sprintf("06 00 %02X %s", len(hexAPDU(e.t, d)), d))
	if r := e.master("registration", true); r.end[1] != 0x0F {
		e.t.Fatalf("registration ended % X", r.end)
	}
}

// everything runs the whole command set.
func (e *ecr) everything() {
	t := e.t
	// Registration with tag 26 permitting 06 D1 and 06 D3 (§2.1, tag 26).
	e.register("06 0A 26 08 0A 02 06 D1 0A 02 06 D3")

	sale := e.approvedTx("sale", "06 01 0A 04 00 00 00 00 12 34 49 09 78")
	receipt := bcdInt(bmp(sale.infos[0], 0x87))
	if sale.blocks != 1 || bcdInt(bmp(sale.infos[0], 0x04)) != 1234 {
		t.Fatalf("sale: %d text blocks, amount % X", sale.blocks, bmp(sale.infos[0], 0x04))
	}
	if r := e.tx("decline", "06 01 0A 04 00 00 00 00 01 51 49 09 78"); !r.aborted || r.end[3] != 0x05 {
		t.Fatalf("decline ended % X", r.end)
	}
	if r := e.tx("cancel", "06 01 0A 04 00 00 00 00 01 53 49 09 78"); !r.aborted || r.end[3] != 0x6C {
		t.Fatalf("cancel ended % X", r.end)
	}
	rev := e.approvedTx("reversal", "06 30 06 00 00 00 87 "+bcd2(receipt))
	if bcdInt(bmp(rev.infos[0], 0x04)) != 1234 {
		t.Fatal("reversal amount")
	}
	e.approvedTx("refund", "06 31 0A 00 00 00 04 00 00 00 00 05 00")
	for _, sb := range []struct {
		cmd           string
		info, receipt int
	}{
		{"06 20 03 00 00 00", 0, 1},
		{"06 20 05 00 00 00 03 01", 1, 1},
		{"06 20 05 00 00 00 03 02", 0, 0},
		{"06 20 05 00 00 00 03 03", 1, 0},
	} {
		r := e.tx("repeat receipt "+sb.cmd, sb.cmd)
		if fmt.Sprintf("% X", r.end) != "06 0F 00" || len(r.infos) != sb.info || r.blocks != sb.receipt {
			t.Fatalf("%s: end % X, %d infos, %d receipts", sb.cmd, r.end, len(r.infos), r.blocks)
		}
	}
	pre := e.approvedTx("pre-authorisation", "06 22 0A 04 00 00 00 00 80 00 49 09 78")
	if pre.blocks+pre.lines != 0 {
		t.Fatal("receipt for a successful pre-authorisation (§2.2.7)")
	}
	res := bcdInt(bmp(pre.infos[0], 0x87))
	e.approvedTx("book total", "06 24 0D 87 "+bcd2(res)+" 04 00 00 00 00 65 00 49 09 78")
	// §2.10 Partial-Reversal 87<receipt-no> 04<amount>: the amount is the
	// unused part; the rest is booked (20.00 reserved, 5.00 unused: 15.00).
	pre = e.approvedTx("pre-authorisation", "06 22 0A 04 00 00 00 00 20 00 49 09 78")
	res = bcdInt(bmp(pre.infos[0], 0x87))
	pr := e.approvedTx("partial reversal", "06 23 0D 87 "+bcd2(res)+" 04 00 00 00 00 05 00 49 09 78")
	if got := bcdInt(bmp(pr.infos[0], 0x04)); got != 1500 {
		t.Fatalf("partial reversal booked %d, want 1500", got)
	}
	// End-of-Day whose first Status-Information the ECR cannot take yet
	// (84 9C 00): the terminal sends it again, and settles once.
	e.repeatLater = 1
	eod := e.approvedTx("end-of-day", "06 50 03 00 00 00")
	if len(eod.infos) != 2 || !bytes.Equal(eod.infos[0], eod.infos[1]) {
		t.Fatalf("end-of-day after 84 9C: %d status informations %X, want the same one twice", len(eod.infos), eod.infos)
	}
	if got := bcdInt(bmp(eod.infos[0], 0x04)); got != 6500+1500-500 {
		t.Fatalf("end-of-day total %d, want %d", got, 6500+1500-500)
	}
	// Read Card (§2.21): 80 00 00, maybe 04 FF, then the card data in a
	// Status-Information (§3.1.2, track 2 in BMP 23) whose 80 00 00 gives
	// master rights back: no Completion follows.
	e.command("read card", "06 C0 01 1E")
	for {
		a, err := e.line.recv(time.Now().Add(5 * time.Second))
		if err != nil {
			t.Fatalf("read card: terminal went quiet: %v", err)
		}
		if err := e.line.send([]byte{0x80, 0x00, 0x00}); err != nil {
			t.Fatal(err)
		}
		if a[0] == 0x04 && a[1] == 0xFF {
			continue
		}
		if a[0] != 0x04 || a[1] != 0x0F || a[3] != 0x23 {
			t.Fatalf("read card: % X, want a Status-Information with track 2", a)
		}
		break
	}
	// Status-Enquiry (§2.56) and Log-Off (§2.24).
	e.command("status enquiry", "05 01 03 00 00 00")
	if r := e.master("status enquiry", true); r.end[1] != 0x0F {
		t.Fatal("status enquiry")
	}
	// The registration after an unanswered Completion is answered.
	e.command("sale", "06 01 0A 04 00 00 00 00 02 00 49 09 78")
	e.master("sale", false)
	e.register("")
	e.command("log-off", "06 02 00")
}

func startSimTerminal(t *testing.T, args ...string) (spec string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- runSimTerminal(ctx, append(args, "--step", "5ms", "--quiet"), &stdout, &stderr) }()
	re := regexp.MustCompile(`on (\S+)\n`)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			spec = m[1]
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no address printed; stderr=%q", stderr.String())
		}
	}
	return spec, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sim terminal: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("sim terminal did not stop")
		}
	}
}

func TestIndependentECRTCP(t *testing.T) {
	spec, stop := startSimTerminal(t, "--tcp", "127.0.0.1:0")
	defer stop()
	c, err := net.Dial("tcp", strings.TrimPrefix(spec, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	(&ecr{t: t, line: ecrTCP{c}}).everything()
}

func TestIndependentECRPTY(t *testing.T) {
	spec, stop := startSimTerminal(t, "--pty")
	defer stop()
	f, err := os.OpenFile(spec, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	(&ecr{t: t, line: &ecrSerial{c: f}}).everything()
}

// TestIndependentECRProfile: with --profile not-supported the terminal
// refuses Diagnosis and Pre-Authorisation with 84 83 00 and still sells.
func TestIndependentECRProfile(t *testing.T) {
	spec, stop := startSimTerminal(t, "--tcp", "127.0.0.1:0", "--profile", "not-supported")
	defer stop()
	c, err := net.Dial("tcp", strings.TrimPrefix(spec, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := &ecr{t: t, line: ecrTCP{c}}
	e.register("")
	for _, cmd := range []string{"06 70 00", "06 22 0A 04 00 00 00 00 80 00 49 09 78"} {
		if err := e.line.send(hexAPDU(t, cmd)); err != nil {
			t.Fatal(err)
		}
		a, err := e.line.recv(time.Now().Add(5 * time.Second))
		if err != nil || fmt.Sprintf("% X", a) != "84 83 00" {
			t.Fatalf("%s answered % X, %v; want 84 83 00", cmd, a, err)
		}
	}
	e.approvedTx("sale", "06 01 0A 04 00 00 00 00 12 34 49 09 78")
}
