package datecs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	// The daemon compiles its zones in (cmd/posgate); so does this test,
	// so it never depends on the box's /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
)

// The Bulgarian commands, checked against the Datecs X programmer's manual
// v2.08 (2019). testdata/datecs/bg-*.bin and manual-p4-*.bin are built by
// testdata/datecs/bg-vectors.py, a separate framer written from the
// manual's "Low level protocol" section and checked there against the
// manual's own example frames (p.4).

// bgVectors pairs each golden frame with the message it must encode.
var bgVectors = []struct {
	file string
	msg  datecs.Msg
}{
	// Low level protocol, D) Wrapped messages, p.4: the manual's examples.
	{"manual-p4-req", datecs.Msg{Seq: 0x24, Cmd: 0x2A, Data: []byte("Test\t")}},
	{"manual-p4-ans", datecs.Msg{Seq: 0x24, Cmd: 0x2A, Data: []byte("0\t"), Status: []byte{0x80, 0x80, 0xA0, 0x80, 0x86, 0x9A, 0x80, 0x80}}},
	// Command 74 (4Ah) Reading the Status, option '0' and its Answer(2), p.23.
	{"bg-lastdoc-req", datecs.Msg{Seq: 0x20, Cmd: 0x4A, Data: []byte("0\t")}},
	{"bg-lastdoc-ans", datecs.Msg{Seq: 0x20, Cmd: 0x4A, Data: datecs.Params("0", "0", "0", "1", "39.00", "1", "21-11-26 17:05:43"), Status: okStatus}},
	// Command 74 (4Ah), option '1' and its Answer(3), p.23-24.
	{"bg-qr-req", datecs.Msg{Seq: 0x21, Cmd: 0x4A, Data: []byte("1\t")}},
	{"bg-qr-ans", datecs.Msg{Seq: 0x21, Cmd: 0x4A, Data: datecs.Params("0", "02517985*0000001*2026-11-21*17:05:43*39.00"), Status: okStatus}},
	// Command 109 (6Dh) Print duplicate copy of receipt, p.34: no parameters.
	{"bg-duplicate-req", datecs.Msg{Seq: 0x22, Cmd: 0x6D, Data: []byte{}}},
	{"bg-duplicate-ans", datecs.Msg{Seq: 0x22, Cmd: 0x6D, Data: []byte("0\t"), Status: okStatus}},
	// Command 61 (3Dh) Set date and time, p.18, with "DST" in summer.
	{"bg-setdate-req", datecs.Msg{Seq: 0x23, Cmd: 0x3D, Data: []byte("21-07-26 10:00:00 DST\t")}},
	// Command 62 (3Eh) Read date and time, p.19.
	{"bg-readdate-ans", datecs.Msg{Seq: 0x24, Cmd: 0x3E, Data: datecs.Params("0", "21-07-26 08:00:00 DST"), Status: okStatus}},
	// Command 48 (30h) Open fiscal receipt, syntax 2 (NSale), p.10.
	{"bg-open-unp-req", datecs.Msg{Seq: 0x25, Cmd: 0x30, Data: datecs.Params("1", "0000", "DT000600-0001-0000042", "1", "")}},
}

func TestBulgariaVectors(t *testing.T) {
	for _, v := range bgVectors {
		t.Run(v.file, func(t *testing.T) {
			want := readVector(t, v.file)
			got, err := datecs.X.Encode(v.msg)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Encode=% X, %v\nwant    % X", got, err, want)
			}
			m, rest, err := datecs.X.Decode(want)
			if err != nil || len(rest) != 0 || !reflect.DeepEqual(m, v.msg) {
				t.Fatalf("Decode=%+v rest % X, %v; want %+v", m, rest, err, v.msg)
			}
		})
	}
}

// handFrame builds an X frame from the manual's rules alone (p.3-4), so
// the peer below does not share the package's codec.
func handFrame(seq byte, cmd uint16, data, status []byte) []byte {
	nib := func(v int) []byte {
		return []byte{byte(0x30 + v>>12&15), byte(0x30 + v>>8&15), byte(0x30 + v>>4&15), byte(0x30 + v&15)}
	}
	body := append([]byte{seq}, nib(int(cmd))...)
	body = append(body, data...)
	if status != nil {
		body = append(append(body, 0x04), status...)
	}
	body = append(body, 0x05)
	counted := append(nib(len(body)+4+0x20), body...)
	sum := 0
	for _, b := range counted {
		sum += int(b)
	}
	return append(append(append([]byte{0x01}, counted...), nib(sum&0xFFFF)...), 0x03)
}

// rawPort is a fakePort whose far end sees the raw bytes the driver wrote.
type rawPort struct {
	*fakePort
	peer func(raw []byte) []byte
}

func (r *rawPort) Write(b []byte) (int, error) {
	out := r.peer(append([]byte(nil), b...))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	r.in = append(r.in, out...)
	r.cond.Broadcast()
	return len(b), nil
}

// specPeer is a minimal X printer written from the manual: it splits each
// request by hand, checks the whole frame against handFrame (so LEN, CMD
// and BCC are as the manual says) and answers from answers[cmd] (fields
// after the error field, ErrorCode 0), recording the data of every request.
type specPeer struct {
	t       *testing.T
	answers map[uint16][]string
	// byData overrides answers for one command and request data.
	byData map[string][]string
	seen   []string // "CMD data" of each request, e.g. "4A 0\t"
}

func (s *specPeer) reply(raw []byte) []byte {
	if len(raw) < 16 || raw[0] != 0x01 || raw[len(raw)-1] != 0x03 {
		s.t.Errorf("not a frame: % X", raw)
		return nil
	}
	seq := raw[5]
	cmd := uint16(0)
	for _, b := range raw[6:10] {
		cmd = cmd<<4 | uint16(b-0x30)
	}
	data := raw[10 : len(raw)-6] // up to <05><BCC 4><03>
	if want := handFrame(seq, cmd, data, nil); !bytes.Equal(raw, want) {
		s.t.Errorf("request % X\nwant (manual)   % X", raw, want)
	}
	s.seen = append(s.seen, fmt.Sprintf("%02X %s", cmd, data))
	fields, ok := s.byData[fmt.Sprintf("%02X %s", cmd, data)]
	if !ok {
		fields = s.answers[cmd]
	}
	var ans []byte
	for _, f := range append([]string{"0"}, fields...) {
		ans = append(append(ans, f...), '\t')
	}
	return handFrame(seq, cmd, ans, okStatus)
}

func (s *specPeer) open(t *testing.T, opts datecs.Options) *datecs.Printer {
	t.Helper()
	port := &rawPort{fakePort: newFakePort(datecs.X, nil), peer: s.reply}
	opts.Timeout = 200 * time.Millisecond
	opts.Log = zerolog.New(zerolog.NewTestWriter(t))
	p, err := datecs.New(testCtx(t), port, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func newSpecPeer(t *testing.T) *specPeer {
	return &specPeer{t: t, answers: map[uint16][]string{
		0x5A: {"FP-700X", "1.00BG", "23Mar22", "1000", "ABCD", "00000000", "DT000600", "02517985"},
		0x32: {"1", "0.00", "20.00", "20.00", "9.00", "100.00", "100.00", "100.00", "100.00", "01-01-24"},
	}, byData: map[string][]string{}}
}

// TestBulgariaDriverAgainstSpecPeer: each new method sends the request the
// manual defines and reads the answer the manual defines.
func TestBulgariaDriverAgainstSpecPeer(t *testing.T) {
	ctx := testCtx(t)
	sofia, err := time.LoadLocation("Europe/Sofia")
	if err != nil {
		t.Fatal(err)
	}
	s := newSpecPeer(t)
	// 74 (4Ah) option 0 Answer(2) and option 1 Answer(3), as in bg-lastdoc-ans / bg-qr-ans.
	s.byData["4A 0\t"] = []string{"0", "0", "1", "39.00", "1", "21-11-26 17:05:43"}
	s.byData["4A 1\t"] = []string{"02517985*0000001*2026-11-21*17:05:43*39.00"}
	p := s.open(t, datecs.Options{Location: sofia})

	t.Run("LastDocument", func(t *testing.T) {
		d, err := p.LastDocument(ctx)
		want := datecs.LastDocument{ReceiptStatus: 0, Number: 1, QRAmount: 3900, QRNumber: 1,
			QRTime: time.Date(2026, 11, 21, 17, 5, 43, 0, sofia)}
		if err != nil || !reflect.DeepEqual(d, want) {
			t.Fatalf("LastDocument=%+v, %v; want %+v", d, err, want)
		}
		if got := s.seen[len(s.seen)-1]; got != "4A 0\t" {
			t.Fatalf("sent %q, want 4Ah with option 0", got)
		}
	})
	t.Run("LastQRData", func(t *testing.T) {
		qr, err := p.LastQRData(ctx)
		if err != nil || qr != "02517985*0000001*2026-11-21*17:05:43*39.00" {
			t.Fatalf("LastQRData=%q, %v", qr, err)
		}
		if got := s.seen[len(s.seen)-1]; got != "4A 1\t" {
			t.Fatalf("sent %q, want 4Ah with option 1", got)
		}
	})
	t.Run("Duplicate", func(t *testing.T) {
		if err := p.Duplicate(ctx); err != nil {
			t.Fatal(err)
		}
		if got := s.seen[len(s.seen)-1]; got != "6D " {
			t.Fatalf("sent %q, want 6Dh without data", got)
		}
	})
	t.Run("OpenWithUNP", func(t *testing.T) {
		s.answers[0x30] = []string{"7"}
		slip, err := p.OpenReceipt(ctx, device.ReceiptHeader{UniqueSaleNumber: "DT000600-0001-0000042"})
		if err != nil || slip != 7 {
			t.Fatalf("OpenReceipt=%d, %v", slip, err)
		}
		// Syntax 2: OpCode⇥OpPwd⇥NSale⇥TillNmb⇥Invoice⇥ (bg-open-unp-req).
		if got := s.seen[len(s.seen)-1]; got != "30 1\t0000\tDT000600-0001-0000042\t1\t\t" {
			t.Fatalf("sent %q", got)
		}
	})
	t.Run("SetDateTimeDST", func(t *testing.T) {
		if err := p.SetDateTime(ctx, time.Date(2026, 7, 21, 7, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if got := s.seen[len(s.seen)-1]; got != "3D 21-07-26 10:00:00 DST\t" {
			t.Fatalf("sent %q, want bg-setdate-req's data", got)
		}
	})
}

// TestClockSetOnConnect: with a tolerance, New reads the clock (3Eh, the
// bg-readdate-ans answer: 08:00 DST) and, two hours off the host, sets it
// (3Dh, bg-setdate-req's data); within the tolerance it sends no 3Dh.
func TestClockSetOnConnect(t *testing.T) {
	sofia, err := time.LoadLocation("Europe/Sofia")
	if err != nil {
		t.Fatal(err)
	}
	host := time.Date(2026, 7, 21, 10, 0, 0, 0, sofia)
	for _, tc := range []struct {
		name    string
		printer string
		set     bool
	}{{"Off", "21-07-26 08:00:00 DST", true}, {"Within", "21-07-26 09:59:45 DST", false}, {"NotSet", "", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpecPeer(t)
			s.answers[0x3E] = []string{tc.printer}
			var got []datecs.ClockSync
			s.open(t, datecs.Options{Location: sofia, ClockTolerance: 30 * time.Second,
				Now: func() time.Time { return host },
				OnClockSync: func(_ context.Context, info device.PrinterInfo, cs datecs.ClockSync, err error) {
					if err != nil || info.Serial != "DT000600" {
						t.Errorf("OnClockSync(%+v, %v)", info, err)
					}
					got = append(got, cs)
				}})
			sent := strings.Join(s.seen, "|")
			if set := strings.Contains(sent, "3D 21-07-26 10:00:00 DST\t"); set != tc.set || len(got) != 1 || got[0].Set != tc.set {
				t.Fatalf("sent %q, hook %+v; want set=%v", sent, got, tc.set)
			}
			if tc.name == "Off" && got[0].Drift != -2*time.Hour {
				t.Fatalf("drift %v, want -2h", got[0].Drift)
			}
		})
	}
}

func TestUNPForm(t *testing.T) {
	for _, s := range []string{"DT000600-0001-0000001", "AB123456-zZ9a-9999999"} {
		if err := datecs.ValidateUNP(s); err != nil {
			t.Errorf("ValidateUNP(%q)=%v", s, err)
		}
	}
	for _, s := range []string{"", "DT000600-0001-000001", "dt000600-0001-0000001", "DT00060A-0001-0000001",
		"DT000600_0001-0000001", "DT000600-00-1-0000001", "DT000600-0001-000000A", "DT000600-0001-00000011"} {
		if err := datecs.ValidateUNP(s); !errors.Is(err, datecs.ErrUNP) {
			t.Errorf("ValidateUNP(%q)=%v, want ErrUNP", s, err)
		}
	}
	if u, err := datecs.FormatUNP("DT000600", "7", 42); err != nil || u != "DT000600-0007-0000042" {
		t.Fatalf("FormatUNP=%q, %v", u, err)
	}
	for _, c := range []struct {
		serial, op string
		seq        int
	}{{"DT000600", "1", 0}, {"DT000600", "12345", 1}, {"D1000600", "1", 1}, {"DT000600", "1", 10000000}} {
		if _, err := datecs.FormatUNP(c.serial, c.op, c.seq); !errors.Is(err, datecs.ErrUNP) {
			t.Errorf("FormatUNP(%+v)=%v, want ErrUNP", c, err)
		}
	}
}

// TestBulgarianReceipt: driver and simulator, over a pty and TCP. A receipt
// with a UNP comes back with the UNP, the QR data, the document number and
// the fiscal memory number, and the paper shows the UNP and the QR.
func TestBulgarianReceipt(t *testing.T) {
	eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)
		doc := sampleReceipt("bg-1")
		res, err := p.PrintReceipt(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		rec := r.sim.Receipts()[0]
		if res.UNP != sampleUNP("bg-1") || rec.UniqueSaleNumber != res.UNP || res.FiscalMemorySerial != "02517985" ||
			res.QRData == "" || res.QRData != rec.QR || res.DocumentNumber != rec.Number {
			t.Fatalf("result %+v\nprinted UNP %q QR %q number %d", res, rec.UniqueSaleNumber, rec.QR, rec.Number)
		}
		q, err := datecs.ParseFiscalQR(res.QRData, time.Local)
		if err != nil || q.Amount != sampleTotal || q.FiscalMemory != "02517985" || q.Number != 1 || !q.Time.Equal(res.Time) {
			t.Fatalf("QR %+v, %v; result %+v", q, err, res)
		}
		if !strings.Contains(rec.Text, res.UNP) || !strings.Contains(rec.Text, "QR "+res.QRData) {
			t.Fatalf("paper:\n%s", rec.Text)
		}

		t.Run("ErrUNPReused", func(t *testing.T) {
			other := sampleReceipt("bg-2")
			other.Header.UniqueSaleNumber = res.UNP
			_, err := p.PrintReceipt(ctx, other)
			var pe *device.PrinterError
			if !errors.As(err, &pe) || pe.Code != printer.CodeUNPUsed || !errors.Is(err, device.ErrCommandNotPermitted) {
				t.Fatalf("reused UNP: %v", err)
			}
			if n := len(r.sim.Receipts()); n != 1 {
				t.Fatalf("%d receipts, want 1", n)
			}
		})
		t.Run("ErrUNPForm", func(t *testing.T) {
			bad := sampleReceipt("bg-3")
			bad.Header.UniqueSaleNumber = "DT000600-0001-123"
			before := r.sim.Executed()
			if _, err := p.PrintReceipt(ctx, bad); !errors.Is(err, datecs.ErrUNP) {
				t.Fatalf("err=%v, want ErrUNP", err)
			}
			if r.sim.Executed() != before {
				t.Fatal("a frame was sent for a malformed UNP")
			}
		})
		t.Run("Duplicate", func(t *testing.T) {
			if err := p.Duplicate(ctx); err != nil {
				t.Fatal(err)
			}
			j := r.sim.Journal()
			d := j[len(j)-1]
			if d.Kind != printer.KindDuplicate || d.Number != rec.Number || d.QR != "" ||
				!strings.Contains(d.Text, "DUPLICATE") || strings.Contains(d.Text, "QR ") {
				t.Fatalf("duplicate %+v:\n%s", d, d.Text)
			}
			var pe *device.PrinterError
			if err := p.Duplicate(ctx); !errors.As(err, &pe) || pe.Code != printer.CodeNoDuplicate {
				t.Fatalf("second duplicate: %v", err)
			}
		})
		t.Run("NoReadBackWithoutUNP", func(t *testing.T) {
			plain := sampleReceipt("bg-4")
			plain.Header.UniqueSaleNumber = ""
			res, err := p.PrintReceipt(ctx, plain)
			if err != nil || res.UNP != "" || res.QRData != "" || res.FiscalMemorySerial != "02517985" {
				t.Fatalf("%+v, %v", res, err)
			}
		})
	})
}

// TestBulgarianReadBackLost: the line drops on the read-back after close;
// the retry finds the receipt printed, reads back and prints nothing more.
func TestBulgarianReadBackLost(t *testing.T) {
	eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)
		doc := sampleReceipt("bg-lost")
		r.sim.DropLineAfter(datecs.CmdStatus) // the next 4Ah is the read-back's
		if _, err := p.PrintReceipt(ctx, doc); err == nil {
			t.Fatal("PrintReceipt succeeded on a dead line")
		}
		r.sim.RestoreLine()
		p = r.connect(t)
		res, err := p.PrintReceipt(ctx, doc)
		if err != nil || !res.Recovered || res.QRData == "" || res.UNP != sampleUNP("bg-lost") || res.DocumentNumber != 1 {
			t.Fatalf("retry: %+v, %v", res, err)
		}
		if n := len(r.sim.Receipts()); n != 1 {
			t.Fatalf("%d receipts, want 1", n)
		}
	})
}

// TestClockSyncOnSimulator: a simulator an hour slow is set on connect.
func TestClockSyncOnSimulator(t *testing.T) {
	slow := func() time.Time { return time.Now().Add(-time.Hour) }
	eachTransport(t, printer.Options{Now: slow}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		var set bool
		r.opts.ClockTolerance = 30 * time.Second
		r.opts.OnClockSync = func(_ context.Context, _ device.PrinterInfo, cs datecs.ClockSync, err error) {
			set = cs.Set && err == nil
		}
		p := r.connect(t)
		got, err := p.DateTime(ctx)
		if err != nil || !set || time.Since(got) > 3*time.Second || time.Since(got) < -3*time.Second {
			t.Fatalf("printer time %v (set %v, %v), want about now", got, set, err)
		}
	})
}
