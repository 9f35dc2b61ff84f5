//go:build linux || darwin

package zvt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/rs/zerolog"
)

// rig is a simulator, the line it serves and a running client.
type rig struct {
	sim    *terminal.Simulator
	client *zvt.Client
	states chan device.StateChange
}

// rigOptions vary a rig.
type rigOptions struct {
	tcp    bool
	perJob bool          // TCP: a connection per command
	log    io.Writer     // default: the test log at debug level
	t4     time.Duration // default 10 s
	config byte          // registration config byte; 0 means the default
	slow   time.Duration // the simulator's 55 scenario; default 200 ms
}

func newRig(t *testing.T, tcp bool) *rig { return newRigWith(t, rigOptions{tcp: tcp}) }

func newRigWith(t *testing.T, o rigOptions) *rig {
	t.Helper()
	tcp := o.tcp
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel)
	if o.log != nil {
		log = zerolog.New(o.log).Level(zerolog.TraceLevel)
	}
	if o.t4 == 0 {
		o.t4 = 10 * time.Second
	}
	if o.slow == 0 {
		o.slow = 200 * time.Millisecond
	}
	sim := terminal.New(terminal.Options{Step: 20 * time.Millisecond, Slow: o.slow, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	var spec string
	if tcp {
		srv, err := simulator.ServeTCP(ctx, "127.0.0.1:0", sim.ServeTCP, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		spec = "tcp://" + srv.Addr()
	} else {
		srv, err := simulator.ServePTY(ctx, sim.ServeSerial, simulator.PTYOptions{Link: filepath.Join(t.TempDir(), "ttyZVT"), Log: log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		spec = srv.Path()
	}
	r := &rig{sim: sim, states: make(chan device.StateChange, 16)}
	var n device.Notifier
	n.Subscribe(func(c device.StateChange) {
		select {
		case r.states <- c:
		default:
		}
	})
	r.client = zvt.New(zvt.Options{ID: "t1", Spec: spec, Log: log, Notifier: &n,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond, T4: o.t4,
		ConnectPerJob: o.perJob, Config: o.config})
	var wg sync.WaitGroup
	wg.Go(func() { r.client.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	if !o.perJob {
		r.waitState(t, device.Connected)
	}
	return r
}

func (r *rig) waitState(t *testing.T, want device.StateKind) device.StateChange {
	t.Helper()
	select {
	case c := <-r.states:
		if c.Kind != want {
			t.Fatalf("state=%s (%v), want %s", c.Kind, c.Err, want)
		}
		return c
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s", want)
	}
	return device.StateChange{}
}

// recorder keeps the events of one call.
type recorder struct {
	mu     sync.Mutex
	events []device.TxEvent
	onInfo func(*device.TxInfo) error
	first  chan struct{} // closed at the first intermediate status
	once   sync.Once
}

func newRecorder() *recorder { return &recorder{first: make(chan struct{})} }

func (r *recorder) handle(_ context.Context, e device.TxEvent) error {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if e.Kind == device.EventIntermediate {
		r.once.Do(func() { close(r.first) })
	}
	if e.Kind == device.EventStatusInfo && r.onInfo != nil {
		return r.onInfo(e.Info)
	}
	return nil
}

func (r *recorder) count(k device.TxEventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func approved(t *testing.T, res device.TxResult, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != device.Approved {
		t.Fatalf("outcome=%s code=%02X (%s), want approved", res.Outcome, res.Code, res.Message)
	}
}

func charges(j []terminal.Entry) (n int) {
	for _, e := range j {
		if e.Kind == terminal.Sale && e.Approved && !e.Reversed {
			n++
		}
	}
	return n
}

// flow runs the whole command set against the simulator.
func flow(t *testing.T, r *rig) {
	ctx := context.Background()
	c, sim := r.client, r.sim
	if err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if !sim.Registered() {
		t.Fatal("simulator not registered")
	}
	// An Abort with nothing running is accepted and changes nothing.
	if err := c.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 0 || st.Software == "" {
		t.Fatalf("status=%+v", st)
	}

	// Sale: the Status-Information reaches the handler before the ack, so
	// the terminal has not committed it yet.
	rec := newRecorder()
	rec.onInfo = func(info *device.TxInfo) error {
		if n := len(sim.Journal()); n != 0 {
			t.Errorf("journal has %d entries before the ack", n)
		}
		return nil
	}
	res, err := c.Authorize(ctx, device.Charge{Amount: 1234, Currency: "EUR"}, rec.handle)
	approved(t, res, err)
	if got, want := res.Info.Amount, int64(1234); got != want {
		t.Fatalf("Amount=%v, want %v", got, want)
	}
	if res.Info.ReceiptNo == 0 || res.Info.Currency != "EUR" {
		t.Fatalf("info=%+v", res.Info)
	}
	if got, want := res.Info.PAN, "6799***********0019"; got != want {
		t.Fatalf("PAN=%q, want %q", got, want)
	}
	if rec.count(device.EventIntermediate) == 0 || rec.count(device.EventStatusInfo) != 1 || rec.count(device.EventPrint) != 1 {
		t.Fatalf("events: %d intermediate, %d status info, %d print", rec.count(device.EventIntermediate), rec.count(device.EventStatusInfo), rec.count(device.EventPrint))
	}
	if len(res.Receipts) != 1 || !strings.Contains(strings.Join(res.Receipts[0].Lines, "\n"), "APPROVED") {
		t.Fatalf("receipts=%q", res.Receipts)
	}
	sale := res.Info.ReceiptNo

	res, err = c.Refund(ctx, device.Charge{Amount: 500}, nil)
	approved(t, res, err)

	// A sale to reverse, then the reversal by receipt number.
	res, err = c.Authorize(ctx, device.Charge{Amount: 2000}, nil)
	approved(t, res, err)
	victim := res.Info.ReceiptNo
	res, err = c.Reverse(ctx, victim, nil)
	approved(t, res, err)
	if got, want := res.Info.Amount, int64(2000); got != want {
		t.Fatalf("reversal Amount=%v, want %v", got, want)
	}
	res, err = c.Reverse(ctx, victim, nil)
	if err != nil || res.Outcome != device.Declined || res.Code != 0xB4 {
		t.Fatalf("second reversal: %+v, %v; want declined B4", res, err)
	}

	res, err = c.Reverse(ctx, 9999, nil)
	if err != nil || res.Outcome != device.Declined || res.Code != 0xB5 {
		t.Fatalf("reversal of an unknown receipt: %+v, %v; want declined B5", res, err)
	}

	// Decline by amount.
	res, err = c.Authorize(ctx, device.Charge{Amount: 1051}, nil)
	if err != nil || res.Outcome != device.Declined || res.Code != 0x05 {
		t.Fatalf("decline: %+v, %v", res, err)
	}
	// The customer cancels.
	res, err = c.Authorize(ctx, device.Charge{Amount: 1053}, nil)
	if err != nil || res.Outcome != device.Aborted {
		t.Fatalf("customer abort: %+v, %v", res, err)
	}

	// Abort: 52 gives no result until the ECR aborts.
	before := charges(sim.Journal())
	rec = newRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err = c.Authorize(ctx, device.Charge{Amount: 1052}, rec.handle)
	}()
	<-rec.first
	if err := c.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if err != nil || res.Outcome != device.Aborted || res.Code != 0x6C {
		t.Fatalf("abort: %+v, %v", res, err)
	}
	if got := charges(sim.Journal()); got != before {
		t.Fatalf("charges=%d after abort, want %d", got, before)
	}

	// 54 approves only after the abort.
	rec = newRecorder()
	done = make(chan struct{})
	go func() {
		defer close(done)
		res, err = c.Authorize(ctx, device.Charge{Amount: 1054}, rec.handle)
	}()
	<-rec.first
	if err := c.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	approved(t, res, err)

	// Recovery: the last result again.
	last := res.Info.ReceiptNo
	res, err = c.RepeatLastResult(ctx, nil)
	approved(t, res, err)
	if res.Info.ReceiptNo != last {
		t.Fatalf("repeat receipt=%d, want %d", res.Info.ReceiptNo, last)
	}

	// End of day: 12.34 + 10.54 - 5.00 (the reversed 20.00 does not count).
	res, err = c.EndOfDay(ctx, nil)
	approved(t, res, err)
	if got, want := res.Info.Amount, int64(1234+1054-500); got != want {
		t.Fatalf("end-of-day total=%v, want %v", got, want)
	}
	if len(res.Receipts) != 1 || res.Receipts[0].Kind != "administration" {
		t.Fatalf("end-of-day receipts=%+v", res.Receipts)
	}
	for _, e := range sim.Journal() {
		if e.Approved && !e.Settled {
			t.Fatalf("unsettled after end-of-day: %+v", e)
		}
	}
	_ = sale

	if err := c.LogOff(ctx); err != nil {
		t.Fatal(err)
	}
	if sim.Registered() {
		t.Fatal("still registered after log-off")
	}

	// Card numbers never reach the trace.
	for _, f := range c.Trace().Frames() {
		if strings.Contains(f.Hex, "679999890000000001") || strings.Contains(f.Summary, "6799998900") {
			t.Fatalf("trace leaks the PAN: %+v", f)
		}
	}
}

func TestFlowPTY(t *testing.T) { flow(t, newRig(t, false)) }
func TestFlowTCP(t *testing.T) { flow(t, newRig(t, true)) }

func TestLineFaultsRetried(t *testing.T) {
	r := newRig(t, false)
	ctx := context.Background()
	if err := r.client.Register(ctx); err != nil {
		t.Fatal(err)
	}
	for name, arm := range map[string]func(){
		"NAK":     r.sim.NAKNextFrame,
		"Garbage": r.sim.GarbageNextFrame,
	} {
		t.Run(name, func(t *testing.T) {
			arm()
			res, err := r.client.Authorize(ctx, device.Charge{Amount: 700}, nil)
			approved(t, res, err)
		})
	}
	if got := charges(r.sim.Journal()); got != 2 {
		t.Fatalf("charges=%d, want 2", got)
	}
}

func TestPersistFailureRefusesStatusInfo(t *testing.T) {
	r := newRig(t, true)
	ctx := context.Background()
	if err := r.client.Register(ctx); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	rec.onInfo = func(*device.TxInfo) error { return errors.New("disk full") }
	_, err := r.client.Authorize(ctx, device.Charge{Amount: 999}, rec.handle)
	if !errors.Is(err, zvt.ErrPersist) {
		t.Fatalf("err=%v, want ErrPersist", err)
	}
	if got := charges(r.sim.Journal()); got != 0 {
		t.Fatalf("charges=%d, want 0: the terminal must not commit", got)
	}
}

func testUnplug(t *testing.T, tcp bool) {
	r := newRig(t, tcp)
	ctx := context.Background()
	if err := r.client.Register(ctx); err != nil {
		t.Fatal(err)
	}
	r.sim.DropLineNextTransaction()
	_, err := r.client.Authorize(ctx, device.Charge{Amount: 800}, nil)
	if !errors.Is(err, device.ErrDisconnected) {
		t.Fatalf("err=%v, want ErrDisconnected", err)
	}
	t.Logf("unplug error: %v", err)
	r.waitState(t, device.Disconnected)
	r.waitState(t, device.Connected)
	res, err := r.client.Authorize(ctx, device.Charge{Amount: 800}, nil)
	approved(t, res, err)
	if got := charges(r.sim.Journal()); got != 1 {
		t.Fatalf("charges=%d, want 1", got)
	}
}

func TestUnplugPTY(t *testing.T) { testUnplug(t, false) }
func TestUnplugTCP(t *testing.T) { testUnplug(t, true) }

func TestFlowTCPConnectPerJob(t *testing.T) {
	flow(t, newRigWith(t, rigOptions{tcp: true, perJob: true}))
}

// TestT4 shows that T4 ends a transaction whose terminal goes quiet, and
// that intermediate status restarts it.
func TestT4(t *testing.T) {
	ctx := context.Background()
	t.Run("ErrT4", func(t *testing.T) {
		// Without intermediate status (config bit 3 off) a 52 goes silent.
		r := newRigWith(t, rigOptions{tcp: true, t4: 300 * time.Millisecond, config: 0xB6})
		if err := r.client.Register(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := r.client.Authorize(ctx, device.Charge{Amount: 152}, nil)
		if !errors.Is(err, zvt.ErrT4) || !errors.Is(err, device.ErrTimeout) {
			t.Fatalf("err=%v, want ErrT4", err)
		}
	})
	t.Run("RestartedByIntermediateStatus", func(t *testing.T) {
		// 55 keeps the terminal busy for 3×T4, with 04 FF every 20 ms.
		r := newRigWith(t, rigOptions{tcp: true, t4: 200 * time.Millisecond, slow: 600 * time.Millisecond})
		if err := r.client.Register(ctx); err != nil {
			t.Fatal(err)
		}
		res, err := r.client.Authorize(ctx, device.Charge{Amount: 155}, nil)
		approved(t, res, err)
	})
}

// TestTraceLogMasksPAN checks the trace-level frame log: every frame is
// there, decoded, and the card number is not.
func TestTraceLogMasksPAN(t *testing.T) {
	var buf lockedBuffer
	r := newRigWith(t, rigOptions{log: &buf})
	ctx := context.Background()
	if err := r.client.Register(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := r.client.Authorize(ctx, device.Charge{Amount: 1234}, nil)
	approved(t, res, err)
	out := buf.String()
	for _, want := range []string{`"message":"zvt frame"`, "Authorization", "Status-Information", "04(amount)=12.34", "6799***********0019"} {
		if !strings.Contains(out, want) {
			t.Fatalf("trace log lacks %q", want)
		}
	}
	if strings.Contains(out, "6799998900") || strings.Contains(out, "679999890000000001") {
		t.Fatal("trace log holds the card number")
	}
	if n := len(r.client.Trace().Frames()); n < 8 {
		t.Fatalf("trace ring holds %d frames", n)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoGoroutineLeaks runs a client and a simulator on both lines and
// checks that their cleanup leaves no goroutine behind.
func TestNoGoroutineLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprint("tcp=", tcp), func(t *testing.T) {
			r := newRig(t, tcp)
			if err := r.client.Register(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.sim.DropLineNextTransaction()
			r.client.Authorize(context.Background(), device.Charge{Amount: 100}, nil)
			r.waitState(t, device.Disconnected)
			r.waitState(t, device.Connected)
		})
	}
	for deadline := time.Now().Add(3 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after cleanup, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIgnoredAbortStillApproves(t *testing.T) {
	r := newRig(t, false)
	ctx := context.Background()
	if err := r.client.Register(ctx); err != nil {
		t.Fatal(err)
	}
	r.sim.IgnoreAbort(true)
	rec := newRecorder()
	type out struct {
		res device.TxResult
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := r.client.Authorize(ctx, device.Charge{Amount: 1000}, rec.handle)
		done <- out{res, err}
	}()
	<-rec.first
	if err := r.client.Abort(ctx); err != nil {
		t.Fatalf("Abort=%v: the terminal acknowledged it", err)
	}
	o := <-done
	approved(t, o.res, o.err)
	if got := charges(r.sim.Journal()); got != 1 {
		t.Fatalf("charges=%d, want 1", got)
	}
}

// TestT3 shows a terminal that takes the command but never answers.
func TestT3(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(io.Discard, c) // a deaf terminal
	})
	ctx, cancel := context.WithCancel(context.Background())
	c := zvt.New(zvt.Options{ID: "t1", Spec: "tcp://" + ln.Addr().String(), T3: 150 * time.Millisecond,
		Log: zerolog.New(zerolog.NewTestWriter(t))})
	wg.Go(func() { c.Run(ctx) })
	defer func() { cancel(); ln.Close(); wg.Wait() }()
	start := time.Now()
	for {
		err = c.Register(ctx)
		if !errors.Is(err, device.ErrOffline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // still connecting
	}
	if !errors.Is(err, zvt.ErrT3) || !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("err=%v, want ErrT3", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("gave up after %v, before T3", d)
	}
}
