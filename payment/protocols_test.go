//go:build linux || darwin

package payment_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/nexo"
	"github.com/posgate/posgate/payment"
	simnexo "github.com/posgate/posgate/simulator/nexo"
	"github.com/posgate/posgate/simulator/terminal"
)

// The payment suites that matter for every terminal (sale, outcomes,
// timeout, late approval, crash reconciliation, no double charge) run
// once per protocol: the payment package must not know which it drives.
var protocols = []string{"zvt", "nexo"}

// eachProtocol runs f as a subtest per protocol.
func eachProtocol(t *testing.T, f func(t *testing.T, proto string)) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) { f(t, p) })
	}
}

// simTerm is what the suites ask of either simulator.
type simTerm interface {
	Journal() []simEntry
	IgnoreAbort(bool)
}

// simEntry is a committed transaction in either simulator's journal. Ref
// is the transaction's reference as posgate reports it (payRef), OrigRef
// that of the transaction a reversal voids.
type simEntry struct {
	Kind         string // sale, refund, reversal
	Amount       int64
	Approved     bool
	Reversed     bool
	Ref, OrigRef string
}

type zvtSim struct{ *terminal.Simulator }

func (z zvtSim) Journal() []simEntry {
	var out []simEntry
	for _, e := range z.Simulator.Journal() {
		se := simEntry{Kind: string(e.Kind), Amount: e.Amount, Approved: e.Approved, Reversed: e.Reversed, Ref: strconv.Itoa(e.ReceiptNo)}
		if e.OrigReceipt != 0 {
			se.OrigRef = strconv.Itoa(e.OrigReceipt)
		}
		out = append(out, se)
	}
	return out
}

type nexoSim struct{ *simnexo.Terminal }

func (n nexoSim) Journal() []simEntry {
	var out []simEntry
	for _, e := range n.Terminal.Journal() {
		out = append(out, simEntry{Kind: string(e.Kind), Amount: e.Amount, Approved: true, Reversed: e.Reversed, Ref: e.POITxID, OrigRef: e.OrigPOITx})
	}
	return out
}

// payRef is how a payment names its terminal transaction: the receipt
// number (ZVT) or the terminal's transaction id (nexo).
func payRef(p payment.Payment) string {
	if p.ReceiptNumber != 0 {
		return strconv.Itoa(p.ReceiptNumber)
	}
	id, _, _ := strings.Cut(p.TerminalRef, "|")
	return id
}

// nexoServed is a nexo simulator serving on loopback.
type nexoServed struct {
	sim  *simnexo.Terminal
	addr string
	root string // PEM file of its generated root
}

// nexoSpec is how a nexo rig finds an existing simulator: "addr|rootfile".
func (n nexoServed) spec() string { return n.addr + "|" + n.root }

func serveNexo(t testing.TB, o terminal.Options) nexoServed {
	t.Helper()
	so := simnexo.Options{Step: o.Step, Slow: o.Slow, CardWait: 20 * time.Second}
	if so.Step == 0 {
		so.Step = 40 * time.Millisecond
	}
	sim, err := simnexo.New(so)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := sim.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); srv.Close() })
	root := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(root, sim.RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return nexoServed{sim: sim, addr: srv.Addr(), root: root}
}

func newNexoRig(t testing.TB, r *rig, o rigOptions) *rig {
	t.Helper()
	spec := o.path
	if spec == "" {
		s := serveNexo(t, o.sim)
		r.sim = nexoSim{s.sim}
		spec = s.spec()
	}
	addr, rootFile, _ := strings.Cut(spec, "|")
	pem, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := nexo.RootPool(pem)
	if err != nil {
		t.Fatal(err)
	}
	key, err := nexo.DeriveKey("posgate-simulator", "Key1", 1)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.Nop()
	if tt, ok := t.(*testing.T); ok && os.Getenv("POSGATE_TEST_LOG") != "" {
		log = zerolog.New(zerolog.NewTestWriter(tt)).Level(zerolog.DebugLevel)
	}
	c, err := nexo.New(nexo.Options{ID: "t1", Addr: "tls://" + addr, POIID: "V400m-324688179", Key: key,
		Trust: nexo.Trust{Roots: roots, Env: nexo.EnvTest}, StatusEvery: 100 * time.Millisecond, StatusWait: 3 * time.Second,
		HealthEvery: 500 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	r.nexo = c
	var dev device.Terminal = c
	if o.wrap != nil {
		dev = o.wrap(dev)
	}
	r.svc = payment.New(r.db, payment.Options{
		Terminals: []payment.Terminal{{ID: "t1", Device: dev, Online: c.Online}},
		Timeout:   o.timeout,
		RetryMin:  100 * time.Millisecond, RetryMax: 500 * time.Millisecond,
		Log: log,
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.Run(ctx) }()
	go func() { defer wg.Done(); r.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	if !o.noWait {
		waitReady(t, r.svc)
	}
	return r
}

// TestNexoLostAnswer: the terminal approves and hangs up before it
// answers. posgate asks it (TransactionStatus) instead of guessing: the
// cashier gets the approval, and the sale is charged once.
func TestNexoLostAnswer(t *testing.T) {
	r := newRig(t, rigOptions{protocol: "nexo"})
	r.sim.(nexoSim).DropNextAnswer()
	p, err := r.svc.Create(context.Background(), sale(800), caller("lost"))
	if err != nil {
		t.Fatal(err)
	}
	p = final(t, r.svc, p.ID, 10*time.Second)
	if p.Status != payment.StatusCompleted || payRef(p) == "" || p.MaskedPAN == "" {
		t.Fatalf("status %s ref %q (%s)", p.Status, payRef(p), p.ResultText)
	}
	if j := r.sim.Journal(); len(j) != 1 || j[0].Ref != payRef(p) || j[0].Reversed {
		t.Fatalf("journal %+v", j)
	}
	var statusAsked bool
	for _, h := range r.sim.(nexoSim).Requests() {
		statusAsked = statusAsked || h.MessageCategory == "TransactionStatus"
	}
	if !statusAsked {
		t.Fatal("the lost answer was not asked for")
	}
}

// answerLost passes the sale to the terminal, which approves it, and then
// reports the answer lost and unresolved (ErrOutcomeUnknown), as the nexo
// driver does when TransactionStatus cannot reach the terminal either.
type answerLost struct{ device.Terminal }

func (a answerLost) Authorize(ctx context.Context, c device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	if _, err := a.Terminal.Authorize(ctx, c, nil); err != nil {
		return device.TxResult{}, err
	}
	return device.TxResult{}, fmt.Errorf("sale: %w: %w", device.ErrDisconnected, device.ErrOutcomeUnknown)
}

// ReverseRef passes through: an embedded interface does not promote it.
func (a answerLost) ReverseRef(ctx context.Context, ref string, h device.TxEventHandler) (device.TxResult, error) {
	return a.Terminal.(device.RefReverser).ReverseRef(ctx, ref, h)
}

// TestNexoOutcomeUnknownReconciled: a nexo terminal commits without
// posgate's acknowledgement, so an unknown outcome with nothing recorded
// is not "not charged": posgate asks the terminal (its last payment names
// this one) and reverses the approval.
func TestNexoOutcomeUnknownReconciled(t *testing.T) {
	r := newRig(t, rigOptions{protocol: "nexo", wrap: func(d device.Terminal) device.Terminal { return answerLost{d} }})
	p, err := r.svc.Create(context.Background(), sale(700), caller("unknown"))
	if err != nil {
		t.Fatal(err)
	}
	p = resolved(t, r.svc, p.ID, 15*time.Second)
	if p.Status != payment.StatusTimeout || p.Resolution != payment.ResolutionReversed || p.Evidence == nil {
		t.Fatalf("status %s resolution %s evidence %+v (%s)", p.Status, p.Resolution, p.Evidence, p.ResultText)
	}
	j := r.sim.Journal()
	if len(j) != 2 || !j[0].Reversed || j[0].Amount != 700 || j[1].Kind != "reversal" {
		t.Fatalf("journal %+v", j)
	}
	if got, want := eventTypes(events(t, r.db)), []string{payment.EventTimeout, payment.EventReversed}; !slices.Equal(got, want) {
		t.Fatalf("events=%v, want %v", got, want)
	}
}
