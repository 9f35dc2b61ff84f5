package zvt_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/rs/zerolog"
)

// tcpRig is a simulator on TCP and a running, registered client.
func tcpRig(t *testing.T, so terminal.Options, co zvt.Options) (*terminal.Simulator, *zvt.Client) {
	t.Helper()
	log := zerolog.New(zerolog.NewTestWriter(t))
	if so.Step == 0 {
		so.Step = 5 * time.Millisecond
	}
	so.Log = log
	sim := terminal.New(so)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := simulator.ServeTCP(ctx, "127.0.0.1:0", sim.ServeTCP, log)
	if err != nil {
		t.Fatal(err)
	}
	co.ID, co.Spec, co.Log = "t1", "tcp://"+srv.Addr(), log
	if co.StatusEvery == 0 {
		co.StatusEvery = -1
	}
	c := zvt.New(co)
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("client did not stop")
		}
		srv.Close()
	})
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	for {
		err := c.Register(rctx)
		if err == nil {
			break
		}
		if !errors.Is(err, device.ErrOffline) || rctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return sim, c
}

func withTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTextBlocksAfterTag26: the driver registers with tag 26 listing
// 06 D3, so the end-of-day receipt comes as one administration text block
// (§3.6); the no-text-block profile sends Print Lines and the driver takes
// them too.
func TestTextBlocksAfterTag26(t *testing.T) {
	for _, profile := range []string{"", "no-text-block"} {
		t.Run("profile="+profile, func(t *testing.T) {
			_, c := tcpRig(t, terminal.Options{Profile: profile}, zvt.Options{})
			ctx := withTimeout(t)
			if _, err := c.Authorize(ctx, device.Charge{Amount: 700}, nil); err != nil {
				t.Fatal(err)
			}
			res, err := c.EndOfDay(ctx, nil)
			if err != nil || res.Outcome != device.Approved || res.Info.Amount != 700 {
				t.Fatalf("end-of-day %+v, %v", res, err)
			}
			wantKind := "administration"
			if profile == "no-text-block" {
				wantKind = ""
			}
			if len(res.Receipts) != 1 || res.Receipts[0].Kind != wantKind || len(res.Receipts[0].Lines) < 5 {
				t.Fatalf("receipts %+v", res.Receipts)
			}
		})
	}
}

// TestPreAuthorisationFlow reserves, books part of it, and settles: only
// the booked amount is turnover.
func TestPreAuthorisationFlow(t *testing.T) {
	sim, c := tcpRig(t, terminal.Options{}, zvt.Options{})
	ctx := withTimeout(t)
	pre, err := c.PreAuthorize(ctx, device.Charge{Amount: 10000}, nil)
	if err != nil || pre.Outcome != device.Approved || len(pre.Receipts) != 0 {
		t.Fatalf("pre-authorisation %+v, %v", pre, err)
	}
	book, err := c.BookTotal(ctx, pre.Info.ReceiptNo, device.Charge{Amount: 6200}, nil)
	if err != nil || book.Outcome != device.Approved || book.Info.Amount != 6200 {
		t.Fatalf("book total %+v, %v", book, err)
	}
	// A second booking of the same reservation: already done (B4).
	again, err := c.BookTotal(ctx, pre.Info.ReceiptNo, device.Charge{Amount: 100}, nil)
	if err != nil || again.Outcome != device.Declined || again.Code != 0xB4 {
		t.Fatalf("second booking %+v, %v", again, err)
	}
	pre2, err := c.PreAuthorize(ctx, device.Charge{Amount: 5000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	part, err := c.PartialReversal(ctx, pre2.Info.ReceiptNo, device.Charge{Amount: 1500}, nil)
	if err != nil || part.Outcome != device.Approved || part.Info.Amount != 3500 {
		t.Fatalf("partial reversal %+v, %v", part, err)
	}
	pre3, err := c.PreAuthorize(ctx, device.Charge{Amount: 4000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rel, err := c.ReleasePreAuth(ctx, pre3.Info.ReceiptNo, nil); err != nil || rel.Outcome != device.Approved {
		t.Fatalf("release %+v, %v", rel, err)
	}
	tot, err := c.TurnoverTotals(ctx, nil)
	if err != nil || tot.Info == nil || tot.Info.Amount != 6200+3500 {
		t.Fatalf("turnover totals %+v, %v", tot, err)
	}
	for _, e := range sim.Journal() {
		if e.Settled {
			t.Fatal("Send Turnover Totals settled something")
		}
	}
	if _, err := c.Diagnosis(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestQuirkProfiles drives the documented firmware deviations.
func TestQuirkProfiles(t *testing.T) {
	for _, profile := range []string{"nack-1e", "not-supported"} {
		t.Run(profile, func(t *testing.T) {
			_, c := tcpRig(t, terminal.Options{Profile: profile}, zvt.Options{})
			ctx := withTimeout(t)
			_, err := c.Diagnosis(ctx)
			var re *zvt.RejectedError
			if !errors.Is(err, zvt.ErrNotSupported) || !errors.As(err, &re) || re.Code != 0x83 {
				t.Fatalf("diagnosis err=%v, want ErrNotSupported", err)
			}
			if _, err := c.PreAuthorize(ctx, device.Charge{Amount: 100}, nil); !errors.Is(err, zvt.ErrNotSupported) {
				t.Fatalf("pre-authorisation err=%v", err)
			}
			// Sales still work.
			if res, err := c.Authorize(ctx, device.Charge{Amount: 100}, nil); err != nil || res.Outcome != device.Approved {
				t.Fatalf("sale %+v, %v", res, err)
			}
		})
	}
	t.Run("tlv-unasked", func(t *testing.T) {
		// The driver registers with TLV anyway; a terminal that sends TLV
		// regardless is read the same way, and its 1F1F is mirrored.
		_, c := tcpRig(t, terminal.Options{Profile: "tlv-unasked"}, zvt.Options{})
		ctx := withTimeout(t)
		for range 2 {
			if res, err := c.Authorize(ctx, device.Charge{Amount: 100}, nil); err != nil || res.Outcome != device.Approved {
				t.Fatalf("sale %+v, %v", res, err)
			}
		}
	})
	t.Run("abort-ignored", func(t *testing.T) {
		_, c := tcpRig(t, terminal.Options{Profile: "abort-ignored", Step: 50 * time.Millisecond}, zvt.Options{})
		ctx := withTimeout(t)
		first := make(chan struct{})
		var once sync.Once
		done := make(chan device.TxResult, 1)
		go func() {
			res, _ := c.Authorize(ctx, device.Charge{Amount: 1000}, func(_ context.Context, e device.TxEvent) error {
				if e.Kind == device.EventIntermediate {
					once.Do(func() { close(first) })
				}
				return nil
			})
			done <- res
		}()
		<-first
		if err := c.Abort(ctx); err != nil {
			t.Fatalf("Abort=%v", err)
		}
		// The terminal carries on: the call reports the approval, which
		// the payment layer then reverses (docs/payments.md).
		if res := <-done; res.Outcome != device.Approved {
			t.Fatalf("outcome %s, want approved", res.Outcome)
		}
	})
	t.Run("repeat-no-status", func(t *testing.T) {
		_, c := tcpRig(t, terminal.Options{Profile: "repeat-no-status"}, zvt.Options{})
		ctx := withTimeout(t)
		if _, err := c.Authorize(ctx, device.Charge{Amount: 100}, nil); err != nil {
			t.Fatal(err)
		}
		// The terminal prints the receipt again but sends no
		// Status-Information: the result has no Info, which the payment
		// layer treats as "cannot tell" (needs review), never as approved
		// or not charged.
		res, err := c.RepeatLastResult(ctx, nil)
		if err != nil || res.Info != nil || len(res.Receipts) != 1 {
			t.Fatalf("repeat %+v, %v", res, err)
		}
	})
}

// TestRetryLaterRepolls: a handler that cannot store the
// Status-Information yet gets it again from the terminal (84 9C, §2.2.6),
// and the payment is committed once.
func TestRetryLaterRepolls(t *testing.T) {
	sim, c := tcpRig(t, terminal.Options{Repoll: 50 * time.Millisecond}, zvt.Options{})
	ctx := withTimeout(t)
	calls := 0
	res, err := c.Authorize(ctx, device.Charge{Amount: 900}, func(_ context.Context, e device.TxEvent) error {
		if e.Kind != device.EventStatusInfo {
			return nil
		}
		calls++
		if calls < 3 {
			return fmt.Errorf("database is locked: %w", device.ErrRetryLater)
		}
		return nil
	})
	if err != nil || res.Outcome != device.Approved || calls != 3 {
		t.Fatalf("%+v, %v, %d calls", res, err, calls)
	}
	if n := unreversedSales(sim.Journal()); n != 1 {
		t.Fatalf("charges=%d, want 1", n)
	}
	// A store that never comes back: refused after RetryLater tries, and
	// the terminal reverses (nothing committed).
	res, err = c.Authorize(ctx, device.Charge{Amount: 901}, func(_ context.Context, e device.TxEvent) error {
		if e.Kind == device.EventStatusInfo {
			return device.ErrRetryLater
		}
		return nil
	})
	if !errors.Is(err, zvt.ErrPersist) {
		t.Fatalf("%+v, err=%v, want ErrPersist", res, err)
	}
	if n := unreversedSales(sim.Journal()); n != 1 {
		t.Fatalf("charges=%d, want still 1", n)
	}
}

// TestIdleStatusEnquiry: the client asks for the terminal's status while
// idle (§2.56) and keeps the answer.
func TestIdleStatusEnquiry(t *testing.T) {
	_, c := tcpRig(t, terminal.Options{Software: "SIM-9"}, zvt.Options{StatusEvery: 100 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, at, err := c.LastStatus()
		if !at.IsZero() {
			if err != nil || st.Code != 0 || st.Software != "SIM-9" {
				t.Fatalf("status %+v, %v", st, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no status enquiry while idle")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpecReceiptSyncSimulator: chapter 4. The ECR mirrors the last
// receipt number it knows in TLV 1F1F; one behind the terminal's last
// receipt makes the terminal reverse that transaction and reuse its number.
func TestSpecReceiptSyncSimulator(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	sim := terminal.New(terminal.Options{Step: 5 * time.Millisecond, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := simulator.ServeTCP(ctx, "127.0.0.1:0", sim.ServeTCP, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := rawPeer{t, conn}
	p.send("06 00 0A 00 00 00 BE 09 78 06 02 26 00") // registration with an empty tag 26
	p.expect("§2.1", specAck)
	p.recv()
	p.send(specAck)
	// 1F1F empty: the ECR knows no receipt number.
	p.runTx("sale 1", "06 01 0F 04 00 00 00 00 01 00 49 09 78 06 03 1F 1F 00", specCompletion)
	p.runTx("sale 2", "06 01 11 04 00 00 00 00 02 00 49 09 78 06 05 1F 1F 02 00 01", specCompletion)
	// The ECR says its last receipt is 0001: it never got 0002.
	l := p.runTx("sale 3", "06 01 11 04 00 00 00 00 03 00 49 09 78 06 05 1F 1F 02 00 01", specCompletion)
	if got := bcdNum(bmpsOf(t, l.info[0])[0x87]); got != 2 {
		t.Fatalf("sale 3 got receipt %d, want 2 (reused)", got)
	}
	var reversed int
	for _, e := range sim.Journal() {
		if e.Reversed {
			reversed++
			if e.Amount != 200 {
				t.Fatalf("reversed %+v", e)
			}
		}
	}
	if reversed != 1 {
		t.Fatalf("%d implicitly reversed, want 1", reversed)
	}
}

// TestDiagnosisWhenTheTerminalAsks: a terminal that reports "Diagnosis
// necessary" at registration gets a Diagnosis from the idle loop, and the
// health check sees it.
func TestDiagnosisWhenTheTerminalAsks(t *testing.T) {
	_, c := tcpRig(t, terminal.Options{DiagnosisRequired: true}, zvt.Options{StatusEvery: 50 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if at, err, ran := c.LastDiagnosis(); ran {
			if err != nil || at.IsZero() {
				t.Fatalf("diagnosis: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no diagnosis")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Afterwards the terminal reports ready.
	for {
		st, at, err := c.LastStatus()
		if err == nil && !at.IsZero() && st.Code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v, %v", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSpecSequenceIDsSimulator: the simulator agrees to message sequence
// ids with §5.1's registration and answers exactly §5.1's Completion;
// afterwards it echoes the ECR's ids and numbers its own messages on, one
// by one.
func TestSpecSequenceIDsSimulator(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	sim := terminal.New(terminal.Options{TerminalID: "65000028", Step: 5 * time.Millisecond, SequenceIDs: true, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := simulator.ServeTCP(ctx, "127.0.0.1:0", sim.ServeTCP, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := rawPeer{t, conn}
	p.send(specRegistration)
	p.expect("§5.1", specAck)
	p.expect("§5.1 completion, PT supports MsgSeqId",
		"06 0F 18 19 00 29 65 00 00 28 49 09 78 06 0C 26 04 0A 02 06 D3 1F 73 03 00 00 00")
	p.send(specAck)
	p.send(specAuthorization) // carries 000001
	p.expect("§5.1 echo of 000001", "80 00 08 06 06 1F 73 03 00 00 01")
	want := 2
	for {
		m := p.recv()
		a, _, err := zvt.DecodeAPDU(m)
		if err != nil {
			t.Fatal(err)
		}
		id, ok := zvt.SeqIDOf(a)
		if !ok || id != want {
			t.Fatalf("%s: id %d (%v), want %d", spaced(m), id, ok, want)
		}
		p.send(fmt.Sprintf("80 00 08 06 06 1F 73 03 %02d %02d %02d", id/10000, id/100%100, id%100))
		want++
		if a.Command() == zvt.CmdCompletion {
			break
		}
	}
	// And the driver with ids on, against it.
	_, c := tcpRig(t, terminal.Options{SequenceIDs: true}, zvt.Options{SequenceIDs: true})
	res, err := c.Authorize(withTimeout(t), device.Charge{Amount: 2500}, nil)
	if err != nil || res.Outcome != device.Approved {
		t.Fatalf("sale with sequence ids: %+v, %v", res, err)
	}
}
