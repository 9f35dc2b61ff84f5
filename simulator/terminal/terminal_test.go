package terminal_test

import (
	"context"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/rs/zerolog"
)

// dial connects a bare TCP transport to a simulator, to speak raw APDUs.
func dial(t *testing.T) (zvt.Transport, *terminal.Simulator) {
	t.Helper()
	sim := terminal.New(terminal.Options{Step: 10 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t))})
	srv, err := simulator.ServeTCP(context.Background(), "127.0.0.1:0", sim.ServeTCP, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	p, err := device.Open(context.Background(), "tcp://"+srv.Addr(), device.PortOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return zvt.NewTCP(p, nil), sim
}

func exchange(t *testing.T, tr zvt.Transport, a zvt.APDU) zvt.APDU {
	t.Helper()
	ctx := context.Background()
	if err := tr.Send(ctx, a); err != nil {
		t.Fatal(err)
	}
	resp, err := tr.Recv(ctx, time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestRefusesBeforeRegistration(t *testing.T) {
	tr, _ := dial(t)
	resp := exchange(t, tr, zvt.Authorization(100, 978))
	if !resp.IsNack() || resp.Instr != 0x6B {
		t.Fatalf("answer %s, want 84 6B (not registered)", zvt.CommandName(resp))
	}
}

func TestRefusesWrongPassword(t *testing.T) {
	tr, sim := dial(t)
	p, _ := zvt.Password("123456")
	resp := exchange(t, tr, zvt.Registration(p, 0xBE, 978))
	if !resp.IsNack() || resp.Instr != 0x9A {
		t.Fatalf("answer %s, want 84 9A", zvt.CommandName(resp))
	}
	if sim.Registered() {
		t.Fatal("registered with a wrong password")
	}
}

func TestRegistrationCompletes(t *testing.T) {
	tr, sim := dial(t)
	p, _ := zvt.Password("000000")
	if resp := exchange(t, tr, zvt.Registration(p, 0xBE, 978)); !resp.IsAck() {
		t.Fatalf("answer %s", zvt.CommandName(resp))
	}
	// The terminal now holds master rights and ends with Completion.
	done, err := tr.Recv(context.Background(), time.Now().Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if done.Command() != zvt.CmdCompletion {
		t.Fatalf("got %s, want Completion", zvt.CommandName(done))
	}
	if err := tr.Send(context.Background(), zvt.Ack()); err != nil {
		t.Fatal(err)
	}
	if !sim.Registered() {
		t.Fatal("not registered")
	}
	if len(sim.Journal()) != 0 {
		t.Fatal("registration journaled")
	}
}
