package zvt_test

// Golden frames from the per-command sections of PA00P015 13.08
// (shared/research/zvt-spec/), both directions. Where the spec prints a
// whole frame (the chapter 5.1 examples, the Completions "06 0F 00",
// "80 00 00") it is copied as printed; where it prints the syntax only
// (<password> 87<receipt-no> …) the frame is that syntax filled with the
// values named in the test, and the section is cited next to it.
//
// TestSpecFramesSimulator plays the ECR with these bytes against the
// terminal simulator; TestSpecFramesDriver plays the terminal with them
// against the driver. Neither side is tested only against the other.

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/rs/zerolog"
)

// Frames printed in the spec.
const (
	// §5.1, "Example registration with MsgSeqId": password 000000, config
	// 9E, EUR, tag 26 permitting 06 D3, tag 1F73 asking for sequence ids.
	specRegistration = "06 00 14 00 00 00 9E 09 78 06 0C 26 04 0A 02 06 D3 1F 73 03 00 00 00"
	// §5.1, the Completion of a PT that does not support MsgSeqId:
	// 19 status, 29 TID 65000028, 49 EUR, tag 26 echoing 06 D3.
	specRegistrationCompletion = "06 0F 12 19 00 29 65 00 00 28 49 09 78 06 06 26 04 0A 02 06 D3"
	// §5.1, the authorization that follows: 1.00 EUR, payment type 44,
	// MsgSeqId 1 in the TLV container (a PT without MsgSeqId ignores it).
	// The spec prints the length as 0C, which counts 04, 49 and 19 but not
	// the 8 bytes of the TLV container that follow; with them it is 14.
	specAuthorization = "06 01 14 04 00 00 00 00 01 00 49 09 78 19 44 06 06 1F 73 03 00 00 01"
	// §5.1, an Intermediate Status with T4 = 3 minutes and display texts
	// (tag 24) and a sequence id in its TLV container.
	specIntermediateTLV = "04 FF 19 17 03 06 15 24 0D 07 0B 30 30 20 41 70 70 72 6F 76 65 64 1F 73 03 00 00 08"
	// §5.1, a Completion carrying a TLV container: the driver must take
	// optional BMPs on 06 0F (§3.2).
	specCompletionTLV = "06 0F 08 06 06 1F 73 03 00 00 11"
	// §2.2.9, §2.9, §2.15, §2.16.6, §2.17.6, §2.20.4, §2.43.3: Completion.
	specCompletion = "06 0F 00"
	// §2.1 and every ECR response: positive acknowledgement.
	specAck = "80 00 00"
	// §2.24 Log-Off and §2.23 Abort, no data.
	specLogOff   = "06 02 00"
	specAbortECR = "06 B0 00"
)

func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func spaced(b []byte) string { return strings.ToUpper(fmt.Sprintf("% x", b)) }

// rawPeer reads and writes bare APDUs on TCP with nothing from zvt: the
// length is byte 3, or FF lo hi.
type rawPeer struct {
	t testing.TB
	c net.Conn
}

func (p rawPeer) send(s string) {
	p.t.Helper()
	if _, err := p.c.Write(hx(p.t, s)); err != nil {
		p.t.Fatal(err)
	}
}

func (p rawPeer) recv() []byte {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 3)
	if _, err := io.ReadFull(p.c, hdr); err != nil {
		p.t.Fatalf("read header: %v", err)
	}
	n := int(hdr[2])
	if hdr[2] == 0xFF {
		ext := make([]byte, 2)
		if _, err := io.ReadFull(p.c, ext); err != nil {
			p.t.Fatal(err)
		}
		hdr = append(hdr, ext...)
		n = int(ext[0]) | int(ext[1])<<8
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(p.c, data); err != nil {
		p.t.Fatalf("read data: %v", err)
	}
	return append(hdr, data...)
}

func (p rawPeer) expect(section, want string) {
	p.t.Helper()
	if got := p.recv(); spaced(got) != spaced(hx(p.t, want)) {
		p.t.Fatalf("%s: got  %s\n want %s", section, spaced(got), spaced(hx(p.t, want)))
	}
}

// bmpsOf lists the BMP numbers of a 04 0F.
func bmpsOf(t testing.TB, apdu []byte) map[byte][]byte {
	t.Helper()
	fs, err := zvt.DecodeFields(apdu[3:])
	if err != nil {
		t.Fatalf("status information % X: %v", apdu, err)
	}
	m := map[byte][]byte{}
	for _, f := range fs {
		m[f.BMP] = f.Value
	}
	return m
}

// BMPs a Status-Information may carry (§3.1.1 after a payment, §3.1.3
// after End-of-Day / Send Turnover Totals).
var (
	siPaymentBMPs = []byte{0x27, 0x04, 0x0B, 0x37, 0x0C, 0x0D, 0x0E, 0x17, 0x19, 0x22, 0x29, 0x3B, 0x49, 0x4C,
		0x87, 0x8A, 0x8C, 0x9A, 0xBA, 0x2A, 0x3C, 0xA0, 0x88, 0x8B, 0x06}
	siTotalsBMPs = []byte{0x27, 0x04, 0x60, 0x0B, 0x0C, 0x0D, 0x9A, 0x49}
)

// txLog is what the terminal sent during one command.
type txLog struct {
	intermediate, info, lines, blocks [][]byte
	end                               []byte
}

// runTx sends cmd, expects 80 00 00, acknowledges every terminal message
// and checks the final one against wantEnd.
func (p rawPeer) runTx(section, cmd, wantEnd string) txLog {
	p.t.Helper()
	p.send(cmd)
	p.expect(section+" acknowledgement", specAck)
	var l txLog
	for {
		m := p.recv()
		switch {
		case m[0] == 0x04 && m[1] == 0xFF:
			l.intermediate = append(l.intermediate, m)
		case m[0] == 0x04 && m[1] == 0x0F:
			l.info = append(l.info, m)
		case m[0] == 0x06 && m[1] == 0xD1:
			l.lines = append(l.lines, m)
		case m[0] == 0x06 && m[1] == 0xD3:
			l.blocks = append(l.blocks, m)
		case m[0] == 0x06 && (m[1] == 0x0F || m[1] == 0x1E):
			l.end = m
			p.send(specAck)
			if spaced(m) != spaced(hx(p.t, wantEnd)) {
				p.t.Fatalf("%s: ends with %s, want %s", section, spaced(m), spaced(hx(p.t, wantEnd)))
			}
			return l
		default:
			p.t.Fatalf("%s: unexpected %s", section, spaced(m))
		}
		p.send(specAck)
	}
}

func checkInfo(t *testing.T, section string, si []byte, allowed []byte) map[byte][]byte {
	t.Helper()
	m := bmpsOf(t, si)
	for b := range m {
		if !slices.Contains(allowed, b) {
			t.Fatalf("%s: status information carries BMP %02X: %s", section, b, spaced(si))
		}
	}
	return m
}

func bcdNum(b []byte) int {
	n := 0
	for _, x := range b {
		n = n*100 + int(x>>4)*10 + int(x&0x0F)
	}
	return n
}

func TestSpecFramesSimulator(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	sim := terminal.New(terminal.Options{TerminalID: "65000028", Step: 5 * time.Millisecond, Log: log,
		Now: func() time.Time { return time.Date(2026, 12, 6, 10, 20, 30, 0, time.UTC) }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := simulator.ServeTCP(ctx, "127.0.0.1:0", sim.ServeTCP, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := rawPeer{t, c}

	// §2.1 / §5.1: registration with tag 26 → the Completion printed in §5.1.
	p.send(specRegistration)
	p.expect("§5.1 registration acknowledgement", specAck)
	p.expect("§5.1 registration completion", specRegistrationCompletion)
	p.send(specAck)

	// §2.2: the §5.1 authorization → 04 0F (§3.1.1), a text block (06 D3
	// was permitted, §3.6), Completion 06 0F 00 (§2.2.9).
	l := p.runTx("§2.2 authorization", specAuthorization, specCompletion)
	if len(l.info) != 1 || len(l.blocks) != 1 || len(l.lines) != 0 {
		t.Fatalf("§2.2: %d status infos, %d text blocks, %d print lines", len(l.info), len(l.blocks), len(l.lines))
	}
	si := checkInfo(t, "§3.1.1", l.info[0], siPaymentBMPs)
	if si[0x27][0] != 0 || bcdNum(si[0x04]) != 100 || bcdNum(si[0x87]) != 1 {
		t.Fatalf("§3.1.1: %s", spaced(l.info[0]))
	}
	if _, ok := si[0x06]; !ok {
		t.Fatal("§4.2: no TLV 1F1F to an ECR that registered with TLV")
	}
	// §3.6: the block's tag 25 ends with attribute 09 = 1xxx xxxx ≠ 80.
	if b := l.blocks[0]; !strings.HasSuffix(spaced(b), "09 01 81") && !strings.Contains(spaced(b), "09 01 81 1F 07") {
		t.Fatalf("§3.6: text block does not end its receipt: %s", spaced(b))
	}

	// §2.9 Reversal: <password> 87<receipt-no> → 06 0F 00.
	l = p.runTx("§2.9 reversal", "06 30 06 00 00 00 87 00 01", specCompletion)
	if si := checkInfo(t, "§3.1.1", l.info[0], siPaymentBMPs); bcdNum(si[0x37]) == 0 {
		t.Fatalf("§3.1.1: a reversal's status information has no 37 (orig. trace): %s", spaced(l.info[0]))
	}
	// Reversing it again: 06 1E with B4, already reversed (§2.2.9 Abort).
	p.runTx("§2.9 reversal again", "06 30 06 00 00 00 87 00 01", "06 1E 01 B4")

	// §2.15 Refund: <password> 04<amount> → 06 0F 00; no currency sent, so
	// none comes back (§3.1.1 note).
	l = p.runTx("§2.15 refund", "06 31 0A 00 00 00 04 00 00 00 00 05 00", specCompletion)
	if _, ok := checkInfo(t, "§3.1.1", l.info[0], siPaymentBMPs)[0x49]; ok {
		t.Fatal("§3.1.1: currency code sent back although the ECR sent none")
	}

	// A declined sale (amount ends in 51): 04 0F with the result, receipt,
	// then Abort 06 1E <result-code> (§2.2.9), no currency (not 6F).
	l = p.runTx("§2.2.9 decline", "06 01 0A 04 00 00 00 00 01 51 49 09 78", "06 1E 01 05")
	if si := checkInfo(t, "§3.1.1", l.info[0], siPaymentBMPs); si[0x27][0] != 0x05 {
		t.Fatalf("decline: %s", spaced(l.info[0]))
	}
	// The customer cancels (53): 06 1E 6C with nothing committed.
	p.runTx("§2.2.9 cancel", "06 01 0A 04 00 00 00 00 01 53 49 09 78", "06 1E 01 6C")

	// §2.20 Repeat Receipt, each service byte (Table 5). The last stored
	// transaction is the decline (a payment receipt).
	for _, tt := range []struct {
		cmd           string
		info, receipt bool
	}{
		{"06 20 03 00 00 00", false, true}, // service byte absent: 00
		{"06 20 05 00 00 00 03 00", false, true},
		{"06 20 05 00 00 00 03 01", true, true},
		{"06 20 05 00 00 00 03 02", false, false},
		{"06 20 05 00 00 00 03 03", true, false},
	} {
		l := p.runTx("§2.20 repeat receipt "+tt.cmd, tt.cmd, specCompletion)
		if got := len(l.info) == 1; got != tt.info {
			t.Fatalf("%s: status information %v, want %v", tt.cmd, got, tt.info)
		}
		if got := len(l.blocks) == 1; got != tt.receipt {
			t.Fatalf("%s: receipt %v, want %v", tt.cmd, got, tt.receipt)
		}
	}

	// §2.8 Pre-Authorisation 04<amount> 49<CC>: no receipt when approved
	// (§2.2.7), then §2.13 Book Total 87<receipt-no> 04<amount> 49<CC>.
	l = p.runTx("§2.8 pre-authorisation", "06 22 0A 04 00 00 00 00 50 00 49 09 78", specCompletion)
	if len(l.blocks)+len(l.lines) != 0 {
		t.Fatal("§2.2.7: a receipt for a successful pre-authorisation")
	}
	res := bcdNum(checkInfo(t, "§3.1.1", l.info[0], siPaymentBMPs)[0x87])
	book := fmt.Sprintf("06 24 0D 87 %02d %02d 04 00 00 00 00 30 00 49 09 78", res/100, res%100)
	l = p.runTx("§2.13 book total", book, specCompletion)
	if got := bcdNum(bmpsOf(t, l.info[0])[0x04]); got != 3000 {
		t.Fatalf("§2.13: booked %d, want 3000", got)
	}
	// §2.14 Pre-Authorisation Reversal of a second reservation.
	l = p.runTx("§2.8 pre-authorisation", "06 22 0A 04 00 00 00 00 20 00 49 09 78", specCompletion)
	res = bcdNum(bmpsOf(t, l.info[0])[0x87])
	p.runTx("§2.14 pre-authorisation reversal", fmt.Sprintf("06 25 03 87 %02d %02d", res/100, res%100), specCompletion)
	// §2.10 Partial-Reversal 87<receipt-no> 04<amount> 49<CC> of a third
	// reservation: 04 is the unused amount (40.00 reserved, 15.00 unused),
	// the Status-Information reports the 25.00 booked; 06 0F 00.
	l = p.runTx("§2.8 pre-authorisation", "06 22 0A 04 00 00 00 00 40 00 49 09 78", specCompletion)
	res = bcdNum(bmpsOf(t, l.info[0])[0x87])
	l = p.runTx("§2.10 partial reversal", fmt.Sprintf("06 23 0D 87 %02d %02d 04 00 00 00 00 15 00 49 09 78", res/100, res%100), specCompletion)
	if got := bcdNum(checkInfo(t, "§3.1.1", l.info[0], siPaymentBMPs)[0x04]); got != 2500 {
		t.Fatalf("§2.10: booked %d, want 2500", got)
	}

	// §2.43 Send Turnover Totals: 04 0F (§3.1.3), no receipt, 06 0F 00:
	// sale 1.00 reversed, refund 5.00, bookings 30.00 and 25.00 → 50.00.
	l = p.runTx("§2.43 turnover totals", "06 10 03 00 00 00", specCompletion)
	if got := bcdNum(checkInfo(t, "§3.1.3", l.info[0], siTotalsBMPs)[0x04]); got != 5000 {
		t.Fatalf("§2.43: total %d, want 5000", got)
	}
	// §2.16 End-of-Day: 04 0F (§3.1.3), administration receipt, 06 0F 00.
	l = p.runTx("§2.16 end-of-day", "06 50 03 00 00 00", specCompletion)
	checkInfo(t, "§3.1.3", l.info[0], siTotalsBMPs)
	if len(l.blocks) != 1 {
		t.Fatal("§2.16.5: no administration receipt")
	}
	// §2.17 Diagnosis → 06 0F 00 (§2.17.6).
	p.runTx("§2.17 diagnosis", "06 70 00", specCompletion)

	// §2.56 Status-Enquiry: 06 0F [LLLVAR sw-version] <status> (§2.56.5).
	p.send("05 01 03 00 00 00")
	p.expect("§2.56 acknowledgement", specAck)
	st := p.recv()
	p.send(specAck)
	if st[0] != 0x06 || st[1] != 0x0F || st[3]&0xF0 != 0xF0 || st[len(st)-1] != 0x00 {
		t.Fatalf("§2.56.5: %s", spaced(st))
	}
	// §2.23 Abort while nothing runs → 80 00 00.
	p.send(specAbortECR)
	p.expect("§2.23", specAck)
	// §2.24 Log-Off → 80 00 00; the PT may send no more TLV containers.
	p.send(specLogOff)
	p.expect("§2.24", specAck)

	// §2.1 without TLV: Completion without a TLV container; receipts then
	// come as Print Lines (§3.6: 06 D3 only if the ECR asked for it), and
	// no Status-Information carries a TLV container.
	p.send("06 00 06 00 00 00 BE 09 78")
	p.expect("§2.1 acknowledgement", specAck)
	p.expect("§2.1 completion", "06 0F 0A 19 00 29 65 00 00 28 49 09 78")
	p.send(specAck)
	l = p.runTx("§2.2 sale without TLV", "06 01 0A 04 00 00 00 00 02 00 49 09 78", specCompletion)
	if len(l.blocks) != 0 || len(l.lines) == 0 {
		t.Fatalf("§3.6: %d text blocks, %d print lines to an ECR that permitted none", len(l.blocks), len(l.lines))
	}
	if _, ok := bmpsOf(t, l.info[0])[0x06]; ok {
		t.Fatal("§2.24/§9: TLV container to an ECR that registered without one")
	}
	if last := l.lines[len(l.lines)-1]; last[3]&0x80 == 0 || last[3] == 0x80 {
		t.Fatalf("§3.5: last print line attribute %02X", last[3])
	}

	// A command instead of the acknowledgement of 06 0F: the ECR has master
	// rights back, and the command is served, not swallowed.
	p.send("06 01 0A 04 00 00 00 00 03 00 49 09 78")
	p.expect("sale acknowledgement", specAck)
	for {
		m := p.recv()
		if m[0] == 0x06 && m[1] == 0x0F {
			break
		}
		p.send(specAck)
	}
	p.send("06 00 06 00 00 00 BE 09 78")
	p.expect("registration after an unanswered completion", specAck)
	p.expect("§2.1 completion", "06 0F 0A 19 00 29 65 00 00 28 49 09 78")
	p.send(specAck)
	if n := unreversedSales(sim.Journal()); n != 2 {
		t.Fatalf("charges=%d, want 2 (1.00 reversed; 2.00, 3.00)", n)
	}
}

func unreversedSales(j []terminal.Entry) (n int) {
	for _, e := range j {
		if e.Kind == terminal.Sale && e.Approved && !e.Reversed {
			n++
		}
	}
	return n
}
