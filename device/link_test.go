package device_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/rs/zerolog"
)

// fakePort is an in-memory Port: Read blocks until data, the timeout, or
// Close/unplug; writes are kept.
type fakePort struct {
	mu      sync.Mutex
	in      chan []byte
	closed  chan struct{}
	once    sync.Once
	timeout time.Duration
	written [][]byte
}

func newFakePort() *fakePort {
	return &fakePort{in: make(chan []byte, 16), closed: make(chan struct{}), timeout: -1}
}

func (p *fakePort) Read(b []byte) (int, error) {
	p.mu.Lock()
	d := p.timeout
	p.mu.Unlock()
	var to <-chan time.Time
	if d >= 0 {
		to = time.After(d)
	}
	select {
	case x := <-p.in:
		return copy(b, x), nil
	case <-p.closed:
		return 0, io.EOF
	case <-to:
		return 0, nil
	}
}

func (p *fakePort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.written = append(p.written, append([]byte{}, b...))
	return len(b), nil
}

func (p *fakePort) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

func (p *fakePort) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	p.timeout = d
	p.mu.Unlock()
	return nil
}

// opener hands out ports on demand and fails while down is set.
type opener struct {
	mu    sync.Mutex
	down  bool
	ports chan *fakePort
}

func (o *opener) open(ctx context.Context, spec string, opts device.PortOptions) (device.Port, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down {
		return nil, errors.New("no such device")
	}
	p := newFakePort()
	o.ports <- p
	return p, nil
}

func (o *opener) setDown(v bool) {
	o.mu.Lock()
	o.down = v
	o.mu.Unlock()
}

func TestLinkReconnects(t *testing.T) {
	o := &opener{ports: make(chan *fakePort, 8)}
	var n device.Notifier
	states := make(chan device.StateChange, 8)
	unsub := n.Subscribe(func(c device.StateChange) { states <- c })
	defer unsub()
	l := device.NewLink(device.LinkOptions{ID: "t1", Spec: "/dev/fake", Open: o.open, Notifier: &n,
		Log: zerolog.New(zerolog.NewTestWriter(t)), BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()

	wait := func(want device.StateKind) {
		t.Helper()
		select {
		case c := <-states:
			if c.Kind != want || c.DeviceID != "t1" {
				t.Fatalf("state=%+v, want %s", c, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("no %s", want)
		}
	}
	wait(device.Connected)
	p := <-o.ports

	// A job reads what the device sends while the job holds the port.
	// (Bytes that arrive between jobs are unsolicited and dropped, so the
	// device "answers" only once the job has begun.)
	err := l.Do(ctx, func(ctx context.Context, port device.Port) error {
		p.in <- []byte("hi")
		b := make([]byte, 2)
		n, err := device.Read(ctx, port, b, time.Now().Add(time.Second))
		if err != nil || string(b[:n]) != "hi" {
			t.Errorf("read %q, %v", b[:n], err)
		}
		_, err = device.Read(ctx, port, b, time.Now().Add(20*time.Millisecond))
		if !errors.Is(err, device.ErrTimeout) {
			t.Errorf("err=%v, want ErrTimeout", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Unplugged during a job: the job's error says so.
	o.setDown(true)
	err = l.Do(ctx, func(ctx context.Context, port device.Port) error {
		p.Close()
		_, err := device.Read(ctx, port, make([]byte, 1), time.Now().Add(time.Second))
		return err
	})
	if !errors.Is(err, device.ErrDisconnected) || !errors.Is(err, io.EOF) {
		t.Fatalf("err=%v, want ErrDisconnected wrapping EOF", err)
	}
	wait(device.Disconnected)

	// While it cannot reopen, Do fails at once.
	err = l.Do(ctx, func(context.Context, device.Port) error { return nil })
	if !errors.Is(err, device.ErrOffline) {
		t.Fatalf("err=%v, want ErrOffline", err)
	}
	if online, last := l.State(); online || last == nil {
		t.Fatalf("State=%v, %v", online, last)
	}

	// Plugged back in.
	o.setDown(false)
	wait(device.Connected)
	<-o.ports
	if err := l.Do(ctx, func(context.Context, device.Port) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestLinkIdleUnplug(t *testing.T) {
	before := runtime.NumGoroutine()
	o := &opener{ports: make(chan *fakePort, 8)}
	var n device.Notifier
	changes, unsub := n.SubscribeChan(8)
	defer unsub()
	l := device.NewLink(device.LinkOptions{ID: "p1", Spec: "/dev/fake", Open: o.open, Notifier: &n,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	if k := (<-changes).Kind; k != device.Connected {
		t.Fatalf("state=%s", k)
	}
	(<-o.ports).Close()
	if k := (<-changes).Kind; k != device.Disconnected {
		t.Fatalf("state=%s, want disconnected", k)
	}
	if k := (<-changes).Kind; k != device.Connected {
		t.Fatalf("state=%s, want connected", k)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run=%v, want nil on cancel", err)
	}
	if err := l.Do(context.Background(), func(context.Context, device.Port) error { return nil }); !errors.Is(err, device.ErrOffline) {
		t.Fatalf("Do after Run=%v, want ErrOffline", err)
	}
	// Run waited for its pump goroutines: nothing is left behind.
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Run, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTraceRing(t *testing.T) {
	tr := device.NewTrace(3)
	for i := range 5 {
		tr.Add(device.Frame{Summary: string(rune('a' + i))})
	}
	got := ""
	for _, f := range tr.Frames() {
		got += f.Summary
	}
	if want := "cde"; got != want {
		t.Fatalf("Frames=%q, want %q", got, want)
	}
	var nilTrace *device.Trace
	nilTrace.Add(device.Frame{})
	if nilTrace.Frames() != nil {
		t.Fatal("nil trace kept a frame")
	}
}

func TestOpenBadSpec(t *testing.T) {
	for _, spec := range []string{"", "usb:1234", "tcp://127.0.0.1"} {
		if _, err := device.Open(context.Background(), spec, device.PortOptions{}); !errors.Is(err, device.ErrBadSpec) {
			t.Fatalf("Open(%q)=%v, want ErrBadSpec", spec, err)
		}
	}
	if _, err := device.Open(context.Background(), "/dev/posgate-no-such-port", device.PortOptions{}); err == nil {
		t.Fatal("opened a missing port")
	}
	if _, err := device.Open(context.Background(), "usb:FFFF:FFFF", device.PortOptions{}); !errors.Is(err, device.ErrNoSuchUSB) {
		t.Fatalf("err=%v, want ErrNoSuchUSB", err)
	}
	if _, err := device.Open(context.Background(), "/dev/null", device.PortOptions{StopBits: 3}); !errors.Is(err, device.ErrBadSpec) {
		t.Fatalf("err=%v, want ErrBadSpec for 3 stop bits", err)
	}
}
