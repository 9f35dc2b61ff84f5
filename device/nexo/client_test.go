package nexo_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/nexo"
	simnexo "github.com/posgate/posgate/simulator/nexo"
)

type simRig struct {
	sim    *simnexo.Terminal
	addr   string
	client *nexo.Client
}

func newSimRig(t *testing.T, so simnexo.Options, co func(*nexo.Options)) *simRig {
	t.Helper()
	if so.Step == 0 {
		so.Step = 20 * time.Millisecond
	}
	if so.CardWait == 0 {
		so.CardWait = 5 * time.Second
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
	roots, err := nexo.RootPool(sim.RootPEM())
	if err != nil {
		t.Fatal(err)
	}
	key, err := nexo.DeriveKey("posgate-simulator", "Key1", 1)
	if err != nil {
		t.Fatal(err)
	}
	o := nexo.Options{ID: "t2", Addr: "tls://" + srv.Addr(), POIID: "V400m-324688179", Key: key,
		Trust: nexo.Trust{Roots: roots, Env: nexo.EnvTest}, StatusEvery: 50 * time.Millisecond, StatusWait: 3 * time.Second}
	if co != nil {
		co(&o)
	}
	c, err := nexo.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &simRig{sim: sim, addr: srv.Addr(), client: c}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientScenarios(t *testing.T) {
	r := newSimRig(t, simnexo.Options{Slow: 300 * time.Millisecond}, nil)
	ctx := ctxT(t)
	if err := r.client.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := r.client.Status(ctx); err != nil || st.Code != 0 || st.Text != "OK" {
		t.Fatalf("Status=%+v, %v", st, err)
	}
	t.Run("OK", func(t *testing.T) {
		var events []device.TxEvent
		res, err := r.client.Authorize(ctx, device.Charge{Amount: 1099, Currency: "EUR", Reference: "pay_1"}, func(_ context.Context, e device.TxEvent) error {
			events = append(events, e)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != device.Approved || res.Info == nil || res.Info.Amount != 1099 || res.Info.SaleRef != "pay_1" || res.Info.Ref == "" {
			t.Fatalf("result %+v info %+v", res, res.Info)
		}
		if res.Info.PAN != "5413******9999" || len(res.Receipts) != 2 || !strings.Contains(strings.Join(res.Receipts[1].Lines, "\n"), "Total: EUR 10.99") {
			t.Fatalf("pan %q receipts %+v", res.Info.PAN, res.Receipts)
		}
		if len(events) != 3 || events[0].Kind != device.EventStatusInfo {
			t.Fatalf("events %+v", events)
		}
		// Void it by reference; a second void is refused.
		rv, err := r.client.ReverseRef(ctx, res.Info.Ref, nil)
		if err != nil || rv.Outcome != device.Approved || rv.Info.Amount != 1099 {
			t.Fatalf("reverse: %+v %v", rv, err)
		}
		rv, err = r.client.ReverseRef(ctx, res.Info.Ref, nil)
		if err != nil || rv.Outcome != device.Declined || !strings.Contains(rv.Message, "NotAllowed") {
			t.Fatalf("second reverse: %+v %v", rv, err)
		}
		j := r.sim.Journal()
		if len(j) != 2 || !j[0].Reversed || j[1].Kind != simnexo.Reversal {
			t.Fatalf("journal %+v", j)
		}
	})
	t.Run("ReferencedRefund", func(t *testing.T) {
		res, err := r.client.Authorize(ctx, device.Charge{Amount: 2000, Currency: "EUR"}, nil)
		if err != nil || res.Outcome != device.Approved {
			t.Fatal(res, err)
		}
		rf, err := r.client.Refund(ctx, device.Charge{Amount: 500, Currency: "EUR", OriginalRef: res.Info.Ref}, nil)
		if err != nil || rf.Outcome != device.Approved || rf.Info.Amount != 500 {
			t.Fatalf("refund %+v %v", rf, err)
		}
		j := r.sim.Journal()
		if e := j[len(j)-1]; e.Kind != simnexo.Refund || e.Amount != 500 || e.OrigPOITx == "" {
			t.Fatalf("journal %+v", e)
		}
	})
	for _, tc := range []struct {
		name    string
		amount  int64
		abort   bool
		outcome device.Outcome
		cond    string
	}{
		{"Decline51", 1051, false, device.Declined, "Refusal"},
		{"NoResultUntilAbort52", 1052, true, device.Aborted, "Aborted"},
		{"CustomerCancels53", 1053, false, device.Aborted, "Cancel"},
		{"ApproveAfterAbort54", 1054, true, device.Approved, ""},
		{"Slow55", 1055, false, device.Approved, ""},
		{"LostAnswer56", 1056, false, device.Approved, ""},
		{"PartialReversed57", 1057, false, device.Declined, "Partial approval, reversed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.abort {
				go func() {
					time.Sleep(200 * time.Millisecond)
					if err := r.client.Abort(ctx); err != nil {
						t.Errorf("abort: %v", err)
					}
				}()
			}
			start := time.Now()
			res, err := r.client.Authorize(ctx, device.Charge{Amount: tc.amount, Currency: "EUR"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != tc.outcome || !strings.HasPrefix(res.Message, tc.cond) {
				t.Fatalf("outcome %s %q, want %s %s", res.Outcome, res.Message, tc.outcome, tc.cond)
			}
			if tc.name == "Slow55" && time.Since(start) < 300*time.Millisecond {
				t.Fatalf("slow took %s", time.Since(start))
			}
			if tc.outcome == device.Approved && (res.Info == nil || res.Info.Amount != tc.amount) {
				t.Fatalf("info %+v", res.Info)
			}
			if tc.name == "PartialReversed57" {
				j := r.sim.Journal()
				if e := j[len(j)-2]; e.Amount != 528 || !e.Reversed || j[len(j)-1].Kind != simnexo.Reversal {
					t.Fatalf("partial approval not voided: %+v", j)
				}
			}
		})
	}
	// The last payment is what RepeatLastResult reports.
	res, err := r.client.RepeatLastResult(ctx, nil)
	if err != nil || res.Outcome != device.Approved || res.Info.Amount != 528 {
		t.Fatalf("repeat: %+v %v", res, err)
	}
	// ServiceIDs never repeat.
	seen := map[string]bool{}
	for _, h := range r.sim.Requests() {
		if seen[h.ServiceID] || len(h.ServiceID) > 10 {
			t.Fatalf("ServiceID %q reused or too long", h.ServiceID)
		}
		seen[h.ServiceID] = true
	}
}

func TestClientWrongKey(t *testing.T) {
	r := newSimRig(t, simnexo.Options{Passphrase: "another-passphrase"}, nil)
	ctx := ctxT(t)
	err := r.client.Register(ctx)
	if !errors.Is(err, nexo.ErrRefused) || !strings.Contains(err.Error(), "crypto error") {
		t.Fatalf("Register: %v", err)
	}
	_, err = r.client.Authorize(ctx, device.Charge{Amount: 100}, nil)
	if !errors.Is(err, nexo.ErrRefused) || errors.Is(err, device.ErrOutcomeUnknown) {
		t.Fatalf("Authorize: %v", err)
	}
	if len(r.sim.Journal()) != 0 {
		t.Fatal("charged")
	}
}

func TestClientTrust(t *testing.T) {
	t.Run("ErrOtherTerminal", func(t *testing.T) {
		r := newSimRig(t, simnexo.Options{POIID: "V400m-999999999"}, nil)
		err := r.client.Register(ctxT(t))
		if !errors.Is(err, device.ErrOffline) || !strings.Contains(err.Error(), "names another terminal") {
			t.Fatalf("Register: %v", err)
		}
	})
	t.Run("ErrOtherRoot", func(t *testing.T) {
		r := newSimRig(t, simnexo.Options{}, func(o *nexo.Options) {
			roots, _ := nexo.RootPool(nexo.AdyenTestRoot)
			o.Trust.Roots = roots
		})
		err := r.client.Register(ctxT(t))
		if !errors.Is(err, device.ErrOffline) || !strings.Contains(err.Error(), "unknown authority") {
			t.Fatalf("Register: %v", err)
		}
	})
	t.Run("ErrLiveEnv", func(t *testing.T) {
		r := newSimRig(t, simnexo.Options{}, func(o *nexo.Options) { o.Trust.Env = nexo.EnvLive })
		if err := r.client.Register(ctxT(t)); err == nil {
			t.Fatal("a test terminal passed as live")
		}
	})
}

func TestCheckName(t *testing.T) {
	tr := nexo.Trust{POIID: "V400m-324688179", Env: nexo.EnvTest}
	for cn, ok := range map[string]bool{
		"V400m-324688179.test.terminal.adyen.com":             true,
		"v400m-324688179.test.terminal.adyen.com":             true,
		"V400m-324688179.live.terminal.adyen.com":             false,
		"V400m-324688170.test.terminal.adyen.com":             false,
		"legacy-terminal-certificate.test.terminal.adyen.com": false,
		"V400m-324688179.test.terminal.adyen.com.evil":        false,
		"127.0.0.1.xip.io":                                    false,
	} {
		if err := tr.CheckName(cn); (err == nil) != ok {
			t.Errorf("CheckName(%q)=%v, want ok=%v", cn, err, ok)
		}
	}
	tr.AllowLegacy = true
	if err := tr.CheckName("legacy-terminal-certificate.test.terminal.adyen.com"); err != nil {
		t.Fatal(err)
	}
}

// TestClientSlowAnswer: the simulator's "answer after N s" (--delay):
// the client waits for the answer rather than asking for it.
func TestClientSlowAnswer(t *testing.T) {
	r := newSimRig(t, simnexo.Options{Delay: 400 * time.Millisecond}, nil)
	start := time.Now()
	res, err := r.client.Authorize(ctxT(t), device.Charge{Amount: 100}, nil)
	if err != nil || res.Outcome != device.Approved {
		t.Fatalf("%+v %v", res, err)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Fatalf("answered after %s", d)
	}
	for _, h := range r.sim.Requests() {
		if h.MessageCategory == "TransactionStatus" {
			t.Fatal("asked for the status of an answer that was only slow")
		}
	}
}
