package zvt_test

// The driver against the spec's frames (see spec_frames_test.go for the
// frames and the simulator's side).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/rs/zerolog"
)

// TestSpecFramesDriver plays the terminal with the spec's frames and
// checks every byte the driver sends.
func TestSpecFramesDriver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := zvt.New(zvt.Options{ID: "t1", Spec: "tcp://" + ln.Addr().String(), T3: 2 * time.Second,
		StatusEvery: -1, Log: zerolog.New(zerolog.NewTestWriter(t))})
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p := rawPeer{t, conn}

	type out struct {
		res device.TxResult
		err error
	}
	call := func(fn func() (device.TxResult, error)) chan out {
		ch := make(chan out, 1)
		go func() {
			res, err := fn()
			ch <- out{res, err}
		}()
		return ch
	}
	wait := func(ch chan out) out {
		t.Helper()
		select {
		case o := <-ch:
			return o
		case <-time.After(5 * time.Second):
			t.Fatal("driver call did not return")
		}
		return out{}
	}
	bg := context.Background()

	// §2.1: Registration with password, config BE, EUR and tag 26 listing
	// 06 D1, 06 D3 and 04 01 (tag 26: "the ECR must explicitly request
	// 06D3"). The §5.1 Completion with 19/29/49/06 is taken.
	ch := call(func() (device.TxResult, error) { return device.TxResult{}, c.Register(bg) })
	p.expect("§2.1 registration", "06 00 16 00 00 00 BE 09 78 06 0E 26 0C 0A 02 06 D1 0A 02 06 D3 0A 02 04 01")
	p.send(specAck)
	p.send(specRegistrationCompletion)
	p.expect("§2.1 completion acknowledgement", specAck)
	if o := wait(ch); o.err != nil {
		t.Fatal(o.err)
	}

	// §2.2.1: 04<amount> 49<CC> 06<TLV: 1F1F empty, chapter 4: "the Tag
	// 1F1F will be sent with the length of NULL" while the ECR knows no
	// receipt number>. Every terminal message gets 80 00 00: 04 FF (also
	// §5.1's with a T4 and TLV), 04 0F, 06 D3, 04 01, and a Completion
	// with a TLV container (§3.2, §5.1).
	rec := &events{}
	ch = call(func() (device.TxResult, error) { return c.Authorize(bg, device.Charge{Amount: 1234}, rec.handle) })
	p.expect("§2.2.1 authorization", "06 01 0F 04 00 00 00 00 12 34 49 09 78 06 03 1F 1F 00")
	p.send(specAck)
	for _, m := range []string{
		"04 FF 01 0A", // §3.7 insert card
		specIntermediateTLV,
		// §3.1.1: 27 00, 04 12.34, 0B trace 1, 29 TID, 49 EUR, 87 receipt 7,
		// 8B "VISA\0" (LLVAR, null-terminated), 06 { 1F1F = 0007 }.
		"04 0F 27 27 00 04 00 00 00 00 12 34 0B 00 00 01 29 65 00 00 28 49 09 78 87 00 07 8B F0 F5 56 49 53 41 00 06 05 1F 1F 02 00 07",
		// §3.6: tag 1F07 customer receipt, tag 25 two lines and 09 81.
		"06 D3 15 06 13 1F 07 01 02 25 0D 07 03 41 42 43 07 03 44 45 46 09 01 81",
		"04 01 08 AA 26 12 06 0C 10 20 30", // §3.4 Set Date and Time in ECR
	} {
		p.send(m)
		p.expect("answer to "+m[:5], specAck)
	}
	p.send(specCompletionTLV)
	p.expect("§3.2 completion acknowledgement", specAck)
	o := wait(ch)
	if o.err != nil || o.res.Outcome != device.Approved || o.res.Info.ReceiptNo != 7 || o.res.Info.CardName != "VISA" {
		t.Fatalf("authorization: %+v %+v, %v", o.res, o.res.Info, o.err)
	}
	if len(o.res.Receipts) != 1 || o.res.Receipts[0].Kind != "customer" || strings.Join(o.res.Receipts[0].Lines, "|") != "ABC|DEF" {
		t.Fatalf("receipts %+v", o.res.Receipts)
	}

	// §2.9 Reversal <password> 87<receipt-no>, now with 1F1F = 0007, the
	// receipt number the terminal sent (chapter 4: "The ECR mirrors this
	// value"). The terminal refuses: 06 1E B4 (§2.2.9).
	ch = call(func() (device.TxResult, error) { return c.Reverse(bg, 7, nil) })
	p.expect("§2.9 reversal", "06 30 0D 00 00 00 87 00 07 06 05 1F 1F 02 00 07")
	p.send(specAck)
	p.send("06 1E 01 B4")
	p.expect("§3.3 abort acknowledgement", specAck)
	if o := wait(ch); o.err != nil || o.res.Outcome != device.Declined || o.res.Code != 0xB4 {
		t.Fatalf("reversal: %+v, %v", o.res, o.err)
	}

	// §2.15 Refund <password> 04<amount> 49<CC>; a Completion with the
	// generic §3.2 BMPs 27 and 29 is still a success.
	ch = call(func() (device.TxResult, error) { return c.Refund(bg, device.Charge{Amount: 500}, nil) })
	p.expect("§2.15 refund", "06 31 14 00 00 00 04 00 00 00 00 05 00 49 09 78 06 05 1F 1F 02 00 07")
	p.send(specAck)
	p.send("06 0F 07 27 00 29 65 00 00 28")
	p.expect("§3.2 acknowledgement", specAck)
	if o := wait(ch); o.err != nil || o.res.Outcome != device.Approved {
		t.Fatalf("refund: %+v, %v", o.res, o.err)
	}

	// §2.20.1 Repeat Receipt <password> 03<service-byte 01>.
	ch = call(func() (device.TxResult, error) { return c.RepeatLastResult(bg, nil) })
	p.expect("§2.20.1 repeat receipt", "06 20 05 00 00 00 03 01")
	p.send(specAck)
	p.send(specCompletion)
	p.expect("§2.20.4 acknowledgement", specAck)
	if o := wait(ch); o.err != nil {
		t.Fatal(o.err)
	}

	// §2.8 Pre-Authorisation, §2.13 Book Total, §2.10 Partial-Reversal,
	// §2.14 Pre-Authorisation Reversal, §2.43 Send Turnover Totals, §2.16
	// End-of-Day: each answered 80 00 00 and completed 06 0F 00.
	for _, tt := range []struct {
		section, want string
		fn            func() (device.TxResult, error)
	}{
		{"§2.8", "06 22 11 04 00 00 00 00 50 00 49 09 78 06 05 1F 1F 02 00 07",
			func() (device.TxResult, error) { return c.PreAuthorize(bg, device.Charge{Amount: 5000}, nil) }},
		{"§2.13", "06 24 14 87 00 08 04 00 00 00 00 30 00 49 09 78 06 05 1F 1F 02 00 07",
			func() (device.TxResult, error) { return c.BookTotal(bg, 8, device.Charge{Amount: 3000}, nil) }},
		{"§2.10", "06 23 14 87 00 08 04 00 00 00 00 20 00 49 09 78 06 05 1F 1F 02 00 07",
			func() (device.TxResult, error) { return c.PartialReversal(bg, 8, device.Charge{Amount: 2000}, nil) }},
		{"§2.14", "06 25 0A 87 00 08 06 05 1F 1F 02 00 07",
			func() (device.TxResult, error) { return c.ReleasePreAuth(bg, 8, nil) }},
		{"§2.43", "06 10 03 00 00 00",
			func() (device.TxResult, error) { return c.TurnoverTotals(bg, nil) }},
		{"§2.16.1", "06 50 0A 00 00 00 06 05 1F 1F 02 00 07",
			func() (device.TxResult, error) { return c.EndOfDay(bg, nil) }},
		{"§2.17.1", "06 70 00",
			func() (device.TxResult, error) { return c.Diagnosis(bg) }},
	} {
		ch = call(tt.fn)
		p.expect(tt.section, tt.want)
		p.send(specAck)
		p.send(specCompletion)
		p.expect(tt.section+" completion acknowledgement", specAck)
		if o := wait(ch); o.err != nil || o.res.Outcome != device.Approved {
			t.Fatalf("%s: %+v, %v", tt.section, o.res, o.err)
		}
	}

	// §2.1's error form 84 1E <result-code>: code 83 reads as "not
	// supported".
	ch = call(func() (device.TxResult, error) { return c.Diagnosis(bg) })
	p.expect("§2.17.1", "06 70 00")
	p.send("84 1E 01 83")
	if o := wait(ch); !errors.Is(o.err, zvt.ErrNotSupported) || !errors.Is(o.err, zvt.ErrRejected) {
		t.Fatalf("84 1E 83: err=%v, want ErrNotSupported", o.err)
	}

	// §2.56 Status-Enquiry <password>; Completion [LLLVAR sw] <status>.
	stc := make(chan device.TerminalStatus, 1)
	go func() {
		st, _ := c.Status(bg)
		stc <- st
	}()
	p.expect("§2.56.1 status enquiry", "05 01 03 00 00 00")
	p.send(specAck)
	p.send("06 0F 0A F0 F0 F6 50 47 2D 31 2E 30 00")
	p.expect("§2.56.5 acknowledgement", specAck)
	if st := <-stc; st.Code != 0 || st.Software != "PG-1.0" {
		t.Fatalf("status %+v", st)
	}

	// §2.2.6: a Status-Information the store cannot take yet is answered
	// 84 9C 00; the terminal repeats it and then gets 80 00 00.
	tries := 0
	ch = call(func() (device.TxResult, error) {
		return c.Authorize(bg, device.Charge{Amount: 100}, func(_ context.Context, e device.TxEvent) error {
			if e.Kind == device.EventStatusInfo {
				if tries++; tries == 1 {
					return fmt.Errorf("store busy: %w", device.ErrRetryLater)
				}
			}
			return nil
		})
	})
	p.expect("§2.2.1", "06 01 11 04 00 00 00 00 01 00 49 09 78 06 05 1F 1F 02 00 07")
	p.send(specAck)
	si := "04 0F 15 27 00 04 00 00 00 00 01 00 0B 00 00 02 29 65 00 00 28 87 00 09"
	p.send(si)
	p.expect("§2.2.6 repeat later", "84 9C 00")
	p.send(si) // two seconds later, as the terminal would
	p.expect("§2.2.6 acknowledgement", specAck)
	p.send(specCompletion)
	p.expect("§2.2.9 acknowledgement", specAck)
	if o := wait(ch); o.err != nil || o.res.Outcome != device.Approved || o.res.Info.ReceiptNo != 9 || tries != 2 {
		t.Fatalf("84 9C: %+v, %v, %d handler calls", o.res, o.err, tries)
	}

	// §2.24: Log-Off when the daemon stops.
	cancel()
	p.expect("§2.24 log-off on shutdown", specLogOff)
	p.send(specAck)
	select {
	case <-runDone:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	conn.Close()
}

// events records what a handler saw.
type events struct{ all []device.TxEvent }

func (e *events) handle(_ context.Context, ev device.TxEvent) error {
	e.all = append(e.all, ev)
	return nil
}

// TestSpecT4 plays a terminal that goes quiet between messages: T4 runs
// from its last message (§2.56: "if the PT does not send any command
// within T4"), a print line restarts it as an intermediate status does,
// and a 04 FF <timeout> (§3.7, BCD minutes) sets a longer T4 for the rest
// of the command.
func TestSpecT4(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := zvt.New(zvt.Options{ID: "t1", Spec: "tcp://" + ln.Addr().String(), T4: time.Second,
		StatusEvery: -1, Log: zerolog.New(zerolog.NewTestWriter(t))})
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := rawPeer{t, conn}
	sale := func() chan error {
		ch := make(chan error, 1)
		go func() {
			_, err := c.Authorize(context.Background(), device.Charge{Amount: 100}, nil)
			ch <- err
		}()
		p.recv()
		p.send(specAck)
		return ch
	}

	// Messages 600 ms apart, 3 s in all: T4 (1 s) never runs out; if a
	// print line did not restart it, the 04 0F would come 1.2 s after the
	// 04 FF.
	ch := sale()
	for _, m := range []string{"04 FF 01 0A", "06 D1 04 00 41 42 43", "04 0F 02 27 00", "06 D1 02 81 41"} {
		time.Sleep(600 * time.Millisecond)
		p.send(m)
		p.expect("answer", specAck)
	}
	time.Sleep(600 * time.Millisecond)
	p.send(specCompletion)
	p.expect("completion", specAck)
	if err := <-ch; err != nil {
		t.Fatalf("T4 not restarted by every message: %v", err)
	}

	// 04 FF with timeout 01: T4 is one minute for the rest of the command,
	// so 2 s of silence later is fine.
	ch = sale()
	p.send("04 FF 02 0A 01")
	p.expect("answer", specAck)
	p.send("04 FF 01 04") // no timeout byte: the new T4 stays
	p.expect("answer", specAck)
	time.Sleep(2 * time.Second)
	p.send(specCompletion)
	p.expect("completion", specAck)
	if err := <-ch; err != nil {
		t.Fatalf("T4 from 04 FF not kept: %v", err)
	}

	// Silence past T4: ErrT4.
	ch = sale()
	select {
	case err := <-ch:
		if !errors.Is(err, zvt.ErrT4) {
			t.Fatalf("err=%v, want ErrT4", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("T4 never ran out")
	}
}

// TestSpecSequenceIDsDriver: chapter 5 with the §5.1 example frames. The
// driver asks with 1F73 = 000000, the terminal agrees by echoing it, and
// from the next command on every message carries an id that the other
// side echoes in 80 00 08 06 06 1F 73 03 <id>.
func TestSpecSequenceIDsDriver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	c := zvt.New(zvt.Options{ID: "t1", Spec: "tcp://" + ln.Addr().String(), SequenceIDs: true,
		StatusEvery: -1, Log: zerolog.New(zerolog.NewTestWriter(t))})
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := rawPeer{t, conn}

	reg := make(chan error, 1)
	go func() { reg <- c.Register(context.Background()) }()
	p.expect("§5.1 registration with MsgSeqId",
		"06 00 1C 00 00 00 BE 09 78 06 14 26 0C 0A 02 06 D1 0A 02 06 D3 0A 02 04 01 1F 73 03 00 00 00")
	p.send(specAck)
	p.send("06 0F 18 19 00 29 65 00 00 28 49 09 78 06 0C 26 04 0A 02 06 D3 1F 73 03 00 00 00") // §5.1, PT supports it
	p.expect("§5.1", specAck)
	if err := <-reg; err != nil {
		t.Fatal(err)
	}

	sale := make(chan error, 1)
	go func() {
		_, err := c.Authorize(context.Background(), device.Charge{Amount: 100}, nil)
		sale <- err
	}()
	p.expect("§5.1 authorization with MsgSeqId 000001",
		"06 01 15 04 00 00 00 00 01 00 49 09 78 06 09 1F 1F 00 1F 73 03 00 00 01")
	p.send("80 00 08 06 06 1F 73 03 00 00 01")
	for _, m := range []struct{ pt, ecr string }{
		{"04 FF 09 17 06 06 1F 73 03 00 00 02", "80 00 08 06 06 1F 73 03 00 00 02"},
		{"04 FF 09 01 06 06 1F 73 03 00 00 03", "80 00 08 06 06 1F 73 03 00 00 03"},
		{specIntermediateTLV, "80 00 08 06 06 1F 73 03 00 00 08"},
		{specCompletionTLV, "80 00 08 06 06 1F 73 03 00 00 11"},
	} {
		p.send(m.pt)
		p.expect("§5.1 echo", m.ecr)
	}
	if err := <-sale; err != nil {
		t.Fatal(err)
	}
	// The next command carries the id after the terminal's last: 000012.
	st := make(chan error, 1)
	go func() { _, err := c.Status(context.Background()); st <- err }()
	p.expect("§5.2 next id", "05 01 0B 00 00 00 06 06 1F 73 03 00 00 12")
	p.send("80 00 08 06 06 1F 73 03 00 00 12")
	p.send("06 0F 05 F0 F0 F1 41 00")
	p.expect("completion without an id", specAck)
	if err := <-st; err != nil {
		t.Fatal(err)
	}
}
