package zvt_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
)

// §2.21 Read Card: 06 C0 <timeout>; the terminal answers 80 00 00, may
// send 04 FF, then the card data in a Status-Information (§3.1.2: 23
// <track 2>, LLVAR BCD packed), whose 80 00 00 gives master rights back:
// "there is no Completion". Track 2 here is 6799998900000000019=2512 in
// clear, as a terminal without track masking sends it.
const specReadCardInfo = "04 0F 0F 23 F1 F2 67 99 99 89 00 00 00 00 01 9D 25 12"

// TestSpecReadCardDriver plays the terminal with §2.21's frames: the
// driver sends 06 C0 1E (30 s), acknowledges the card data and returns
// the masked number without waiting for a Completion; the log and the
// trace never hold the number or the track. A card not presented ends
// with 06 1E (§2.21, Abort) and is no error.
func TestSpecReadCardDriver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var logs lockedBuffer // the driver logs from its link goroutine too
	ctx, cancel := context.WithCancel(context.Background())
	c := zvt.New(zvt.Options{ID: "t1", Spec: "tcp://" + ln.Addr().String(), T3: 2 * time.Second,
		StatusEvery: -1, Log: zerolog.New(&logs).Level(zerolog.TraceLevel)})
	runDone := make(chan error, 1)
	go func() { runDone <- c.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := rawPeer{t, conn}
	type out struct {
		cr  device.CardRead
		err error
	}
	read := func() chan out {
		ch := make(chan out, 1)
		go func() {
			cr, err := c.ReadCard(context.Background(), 30*time.Second)
			ch <- out{cr, err}
		}()
		return ch
	}
	ch := read()
	p.expect("§2.21 read card", "06 C0 01 1E")
	p.send(specAck)
	p.send("04 FF 01 0A") // insert card
	p.expect("§3.7 acknowledgement", specAck)
	p.send(specReadCardInfo)
	p.expect("§3.1.2 acknowledgement", specAck)
	var o out
	select {
	case o = <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("ReadCard waited for a Completion §2.21 says never comes")
	}
	if o.err != nil || o.cr.Outcome != device.Approved || o.cr.MaskedPAN != "6799***********0019" || o.cr.Type != "magnetic_stripe" {
		t.Fatalf("read card: %+v, %v", o.cr, o.err)
	}
	for _, f := range c.Trace().Frames() {
		if strings.Contains(f.Hex, "99998900000000019") || strings.Contains(f.Summary, "6799998900000000019") {
			t.Fatalf("the trace holds the card number: %+v", f)
		}
	}
	if s := logs.String(); strings.Contains(s, "6799998900000000019") || strings.Contains(s, "679999890000000000019") {
		t.Fatalf("the log holds the card number:\n%s", s)
	}

	// No card within the timeout: 06 1E 01 <code>; not an error.
	ch = read()
	p.expect("§2.21 read card", "06 C0 01 1E")
	p.send(specAck)
	p.send("06 1E 01 6C")
	p.expect("§3.3 acknowledgement", specAck)
	if o := <-ch; o.err != nil || o.cr.Outcome != device.Aborted || o.cr.MaskedPAN != "" {
		t.Fatalf("read card without a card: %+v, %v", o.cr, o.err)
	}
}

// TestSpecReadCardSimulator plays the ECR with §2.21's frames against the
// simulator: 80 00 00, "insert card", the §3.1.2 Status-Information with
// track 2 only, and nothing after its acknowledgement (no Completion);
// the simulator then takes the next command.
func TestSpecReadCardSimulator(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	sim := terminal.New(terminal.Options{TerminalID: "65000028", Step: 5 * time.Millisecond, Log: log})
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
	p.send("06 00 06 00 00 00 8E 09 78") // §2.1: intermediate status on (bit 3), EUR
	p.expect("§2.1 acknowledgement", specAck)
	if m := p.recv(); m[0] != 0x06 || m[1] != 0x0F {
		t.Fatalf("registration ended %s", spaced(m))
	}
	p.send(specAck)

	p.send("06 C0 01 1E")
	p.expect("§2.21 acknowledgement", specAck)
	p.expect("§3.7 insert card", "04 FF 01 0A")
	p.send(specAck)
	p.expect("§3.1.2 card data", specReadCardInfo)
	p.send(specAck)
	// Master rights are back without a Completion: the next command is
	// answered at once.
	p.send("05 01 03 00 00 00")
	p.expect("§2.56 acknowledgement", specAck)
	if m := p.recv(); m[0] != 0x06 || m[1] != 0x0F {
		t.Fatalf("status enquiry after read card ended %s", spaced(m))
	}
	p.send(specAck)
}
