//go:build linux || darwin

package payment_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/nexo"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/store/storetest"
)

// simulatedTerminal serves a ZVT terminal simulator on a pty until the
// test ends.
func simulatedTerminal(t testing.TB, opts terminal.Options) (*terminal.Simulator, string) {
	t.Helper()
	if opts.Step == 0 {
		opts.Step = 40 * time.Millisecond
	}
	if opts.T2 == 0 {
		opts.T2 = 300 * time.Millisecond
	}
	if opts.T3 == 0 {
		opts.T3 = time.Second
	}
	sim := terminal.New(opts)
	// The link survives a simulated unplug, when the pty is replaced.
	link := filepath.Join(t.TempDir(), "ttyZVT")
	p, err := simulator.ServePTY(context.Background(), sim.ServeSerial, simulator.PTYOptions{Link: link, Log: zerolog.Nop()})
	if err != nil {
		t.Fatalf("serve pty: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return sim, p.Path()
}

// rig is a payment service on a terminal driver and its simulator: a
// ZVT client on a pty simulator, or a nexo client on a TLS simulator
// (rigOptions.protocol).
type rig struct {
	db     *store.DB
	sim    simTerm
	client *zvt.Client  // protocol zvt
	nexo   *nexo.Client // protocol nexo
	svc    *payment.Service
	// stop ends the client and the service, as a crash would (nothing
	// more is written); the test's cleanup calls it too.
	stop func()
	path string // the simulator's pty (zvt)
}

type rigOptions struct {
	protocol string // "zvt" (default) or "nexo"
	timeout  time.Duration
	sim      terminal.Options // Step and Slow apply to both simulators
	db       *store.DB        // default a fresh one
	path     string           // an existing simulator's pty (zvt) or nexoSpec (nexo); default a new one
	wrap     func(device.Terminal) device.Terminal
	noWait   bool // don't wait for the terminal to be ready
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	r := &rig{db: o.db}
	if r.db == nil {
		r.db = storetest.Open(t)
	}
	if o.protocol == "nexo" {
		return newNexoRig(t, r, o)
	}
	path := o.path
	if path == "" {
		var sim *terminal.Simulator
		sim, path = simulatedTerminal(t, o.sim)
		r.sim = zvtSim{sim}
	}
	r.path = path
	log := zerolog.Nop()
	if tt, ok := t.(*testing.T); ok && os.Getenv("POSGATE_TEST_LOG") != "" {
		log = zerolog.New(zerolog.NewTestWriter(tt)).Level(zerolog.DebugLevel)
	}
	r.client = zvt.New(zvt.Options{ID: "t1", Spec: path, Log: log, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	var dev device.Terminal = r.client
	if o.wrap != nil {
		dev = o.wrap(dev)
	}
	r.svc = payment.New(r.db, payment.Options{
		Terminals: []payment.Terminal{{ID: "t1", Device: dev, Online: func() bool {
			on, _ := r.client.Link().State()
			return on
		}}},
		Timeout:  o.timeout,
		RetryMin: 100 * time.Millisecond, RetryMax: 500 * time.Millisecond,
		Log: log,
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.client.Run(ctx) }()
	go func() { defer wg.Done(); r.svc.Run(ctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}
	t.Cleanup(r.stop)
	if !o.noWait {
		waitReady(t, r.svc)
	}
	return r
}

// waitReady waits until the terminal takes payments.
func waitReady(t testing.TB, svc *payment.Service) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := svc.Terminal("t1")
		if st.State == "online" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminal not ready: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sale(amount int64) payment.NewPayment {
	return payment.NewPayment{Type: payment.TypeSale, TerminalID: "t1", Amount: amount, Currency: "EUR", Reference: "order-1"}
}

func caller(key string) payment.Caller {
	return payment.Caller{KeyID: "key_test", IdempotencyKey: key}
}

// final waits up to d for p to reach a final state.
func final(t testing.TB, svc *payment.Service, id string, d time.Duration) payment.Payment {
	t.Helper()
	p, err := svc.Wait(context.Background(), id, d)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Status.Final() {
		t.Fatalf("payment %s still %s after %s", id, p.Status, d)
	}
	return p
}

// resolved waits up to d for p to be resolved (no session open).
func resolved(t testing.TB, svc *payment.Service, id string, d time.Duration) payment.Payment {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		p, err := svc.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if p.Resolution != "" {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment %s not resolved after %s: %+v", id, d, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type event struct {
	Type string
	Data payment.Payment
}

// events returns the outbox's payment events, oldest first.
func events(t testing.TB, db *store.DB) []event {
	t.Helper()
	rows, err := db.Read.Query(`SELECT type, data FROM outbox_events WHERE type LIKE 'payment.%' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var (
			e    event
			data []byte
		)
		if err := rows.Scan(&e.Type, &data); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &e.Data); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func eventTypes(es []event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Type)
	}
	return out
}
