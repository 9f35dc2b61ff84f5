package datecs_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/rs/zerolog"
)

// fakePort is a device.Port whose far end is a function: every frame
// written to it is decoded and handed to reply, and what reply returns is
// what the next reads see. Reads follow go.bug.st/serial: (0, nil) after
// the read timeout.
type fakePort struct {
	profile datecs.Profile
	reply   func(req datecs.Msg, n int) []byte // n counts writes, from 1

	mu      sync.Mutex
	cond    *sync.Cond
	in      []byte
	writes  int
	timeout time.Duration
	closed  bool
}

var _ device.Port = (*fakePort)(nil)

func newFakePort(profile datecs.Profile, reply func(req datecs.Msg, n int) []byte) *fakePort {
	f := &fakePort{profile: profile, reply: reply, timeout: -1}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *fakePort) Write(b []byte) (int, error) {
	m, _, err := f.profile.Decode(b)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	if err != nil {
		return len(b), nil // the far end does not understand this framing
	}
	f.in = append(f.in, f.reply(m, f.writes)...)
	f.cond.Broadcast()
	return len(b), nil
}

func (f *fakePort) Read(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// The deadline is taken before the wake-up timer is armed, and every
	// wake-up before it re-arms one, so a timer that fires a hair before
	// the deadline cannot leave Read waiting for a broadcast that never
	// comes (it once hung TestExchange/ErrNoAnswer for 12 minutes in CI).
	end := time.Now().Add(f.timeout)
	for len(f.in) == 0 && !f.closed {
		if f.timeout < 0 {
			f.cond.Wait()
			continue
		}
		left := time.Until(end)
		if left <= 0 {
			return 0, nil
		}
		t := time.AfterFunc(left, func() { f.mu.Lock(); f.cond.Broadcast(); f.mu.Unlock() })
		f.cond.Wait()
		t.Stop()
	}
	if f.closed {
		return 0, errors.New("closed")
	}
	n := copy(b, f.in)
	f.in = f.in[n:]
	return n, nil
}

func (f *fakePort) SetReadTimeout(d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timeout = d
	return nil
}

func (f *fakePort) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.cond.Broadcast()
	return nil
}

func (f *fakePort) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

func answer(t testing.TB, p datecs.Profile, req datecs.Msg, fields ...string) []byte {
	t.Helper()
	st := okStatus[:p.StatusLen]
	var data []byte
	if p.Escape {
		data = datecs.Params(fields...)
	} else if len(fields) > 0 {
		data = []byte(fields[0])
	}
	b, err := p.Encode(datecs.Msg{Seq: req.Seq, Cmd: req.Cmd, Data: data, Status: st})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testConn(t *testing.T, f *fakePort, opts datecs.Options) *datecs.Conn {
	opts.Log = zerolog.New(zerolog.NewTestWriter(t))
	if opts.Timeout == 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	c := datecs.NewConn(f, opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestExchange(t *testing.T) {
	ctx := testCtx(t)
	t.Run("OK", func(t *testing.T) {
		f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte { return answer(t, datecs.X, req, "0") })
		ans, err := testConn(t, f, datecs.Options{}).Exchange(ctx, 0x4A, nil)
		if err != nil || ans.Cmd != 0x4A || !ans.IsAnswer() {
			t.Fatalf("Exchange=%+v, %v", ans, err)
		}
	})
	t.Run("NAKResendsSameFrame", func(t *testing.T) {
		var seqs []byte
		f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte {
			seqs = append(seqs, req.Seq)
			if n < 3 {
				return []byte{0x15}
			}
			return answer(t, datecs.X, req, "0")
		})
		if _, err := testConn(t, f, datecs.Options{}).Exchange(ctx, 0x4A, nil); err != nil {
			t.Fatal(err)
		}
		if len(seqs) != 3 || seqs[0] != seqs[1] || seqs[1] != seqs[2] {
			t.Fatalf("SEQs sent %X, want the same frame three times", seqs)
		}
	})
	t.Run("SYNKeepsWaiting", func(t *testing.T) {
		// Twenty SYNs 60 ms apart outlast the 250 ms timeout several times
		// over. The gap is a quarter of the timeout so that a loaded machine
		// that wakes the sender late does not turn a SYN into a timeout.
		f := newFakePort(datecs.X, nil)
		f.reply = func(req datecs.Msg, n int) []byte {
			go func() {
				for i := 0; i < 20; i++ {
					time.Sleep(60 * time.Millisecond)
					f.mu.Lock()
					f.in = append(f.in, 0x16)
					if i == 19 {
						f.in = append(f.in, answer(t, datecs.X, req, "0")...)
					}
					f.cond.Broadcast()
					f.mu.Unlock()
				}
			}()
			return nil
		}
		start := time.Now()
		if _, err := testConn(t, f, datecs.Options{Timeout: 250 * time.Millisecond}).Exchange(ctx, 0x45, datecs.Params("Z")); err != nil {
			t.Fatal(err)
		}
		if f.Writes() != 1 || time.Since(start) < 1000*time.Millisecond {
			t.Fatalf("%d writes in %v; want one write, waited out the SYNs", f.Writes(), time.Since(start))
		}
	})
	t.Run("ErrBusyTooLong", func(t *testing.T) {
		f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte { return []byte{0x16, 0x16} })
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				f.mu.Lock()
				f.in = append(f.in, 0x16)
				f.cond.Broadcast()
				f.mu.Unlock()
			}
		}()
		defer wg.Wait()
		defer close(done)
		_, err := testConn(t, f, datecs.Options{MaxBusy: 100 * time.Millisecond}).Exchange(ctx, 0x4A, nil)
		if !errors.Is(err, datecs.ErrBusyTooLong) {
			t.Fatalf("err=%v, want ErrBusyTooLong", err)
		}
	})
	t.Run("ErrNoAnswer", func(t *testing.T) {
		f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte { return nil })
		_, err := testConn(t, f, datecs.Options{Resends: 2}).Exchange(ctx, 0x4A, nil)
		if !errors.Is(err, datecs.ErrNoAnswer) || f.Writes() != 3 {
			t.Fatalf("err=%v after %d writes, want ErrNoAnswer after 3", err, f.Writes())
		}
	})
	t.Run("NoiseAndStrayAnswers", func(t *testing.T) {
		f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte {
			stray := req
			stray.Seq = req.Seq - 1
			if stray.Seq < 0x20 {
				stray.Seq = 0x21
			}
			b := []byte{0x00, 0xFF, 0x01, 0x41, 0x7E}         // noise, with a PRE in it
			b = append(b, answer(t, datecs.X, stray, "0")...) // a late answer to an earlier frame
			return append(b, answer(t, datecs.X, req, "0", "ok")...)
		})
		ans, err := testConn(t, f, datecs.Options{}).Exchange(ctx, 0x4A, nil)
		if err != nil || datecs.Fields(ans.Data)[1] != "ok" {
			t.Fatalf("Exchange=%+v, %v", ans, err)
		}
	})
	t.Run("CorruptAnswerResends", func(t *testing.T) {
		f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte {
			b := answer(t, datecs.X, req, "0")
			if n == 1 {
				b[len(b)-2]++ // BCC
			}
			return b
		})
		if _, err := testConn(t, f, datecs.Options{}).Exchange(ctx, 0x4A, nil); err != nil || f.Writes() != 2 {
			t.Fatalf("err=%v after %d writes, want success on the resend", err, f.Writes())
		}
	})
	t.Run("SeqClashGetsFreshSeq", func(t *testing.T) {
		// The printer replays the answer of another command for our first
		// SEQ (it equals the printer's last one); the driver must not take
		// it, nor resend the same SEQ forever.
		var seqs []byte
		f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte {
			seqs = append(seqs, req.Seq)
			if n == 1 {
				old := req
				old.Cmd = 0x38
				return answer(t, datecs.X, old, "0", "17")
			}
			return answer(t, datecs.X, req, "0")
		})
		ans, err := testConn(t, f, datecs.Options{}).Exchange(ctx, 0x4A, nil)
		if err != nil || ans.Cmd != 0x4A || len(seqs) != 2 || seqs[0] == seqs[1] {
			t.Fatalf("Exchange=%+v, %v; SEQs %X", ans, err, seqs)
		}
	})
	t.Run("ISLProfile", func(t *testing.T) {
		f := newFakePort(datecs.ISL, func(req datecs.Msg, n int) []byte {
			if req.Seq > 0x7F {
				t.Errorf("ISL SEQ %02X above 7F", req.Seq)
			}
			return answer(t, datecs.ISL, req, "FP-2000,1.00BG,ABCD,0,DT000001,02000001")
		})
		c := testConn(t, f, datecs.Options{Profile: datecs.ISL})
		for i := 0; i < 200; i++ {
			ans, err := c.Exchange(ctx, 0x5A, []byte("1"))
			if err != nil || len(ans.Status) != 6 {
				t.Fatalf("Exchange=%+v, %v", ans, err)
			}
		}
	})
}

// TestErrorAnswer135 replays the real answer from ErpNet.FP issue #135: a
// DP-25X refused a payment with -111016 and clean status bytes. ErpNet.FP
// reported success; the driver must report a refusal.
func TestErrorAnswer135(t *testing.T) {
	ctx := testCtx(t)
	vec := readVector(t, "x-error-ans-erpnet135")
	m135, _, err := datecs.Decode(vec)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte {
		switch req.Cmd {
		case 0x35:
			ans := m135
			ans.Seq = req.Seq // the same answer, to this frame
			b, err := datecs.Encode(ans)
			if err != nil {
				t.Fatal(err)
			}
			return b
		case 0x5A:
			return answer(t, datecs.X, req, "0", "DP-25X", "1.00", "01Jan20", "1200", "ABCD", "0", "DT279013", "02279013")
		case 0x32:
			return answer(t, datecs.X, req, vatAnswer...)
		}
		return answer(t, datecs.X, req, "0")
	})
	p, err := datecs.New(ctx, f, datecs.Options{Timeout: 50 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if id := p.Identity(); id.Model != "DP-25X" || id.Serial != "DT279013" || id.FiscalMemory != "02279013" {
		t.Fatalf("Identity=%+v", id)
	}
	_, err = p.AddPayment(ctx, device.Payment{Mode: device.PayCash, Amount: 1200})
	var pe *device.PrinterError
	if !errors.As(err, &pe) || !errors.Is(err, device.ErrPrinterRejected) {
		t.Fatalf("AddPayment err=%v, want a *device.PrinterError", err)
	}
	if pe.Code != -111016 || pe.Command != 0x35 || errors.Is(err, device.ErrPaperOut) {
		t.Fatalf("PrinterError=%+v", pe)
	}
	t.Logf("reported: %v", err)
}

func TestProbe(t *testing.T) {
	ctx := testCtx(t)
	opts := datecs.Options{Timeout: 50 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t))}
	t.Run("X", func(t *testing.T) {
		f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte {
			return answer(t, datecs.X, req, "0", "FP-700X", "1.00", "01Jan20", "1200", "ABCD", "0", "DT000600", "02517985")
		})
		prof, info, err := datecs.Probe(ctx, f, opts)
		if err != nil || prof.Name != datecs.X.Name || info.Serial != "DT000600" || info.FiscalMemory != "02517985" || info.Model != "FP-700X" {
			t.Fatalf("Probe=%v %+v %v", prof.Name, info, err)
		}
	})
	t.Run("ISL", func(t *testing.T) {
		f := newFakePort(datecs.ISL, func(req datecs.Msg, n int) []byte {
			return answer(t, datecs.ISL, req, "DP-150,1.00BG 01Jan20 1200,ABCD,0,DT517985,02517985")
		})
		prof, info, err := datecs.Probe(ctx, f, opts)
		if err != nil || prof.Name != datecs.ISL.Name || info.Serial != "DT517985" || info.Model != "DP-150" {
			t.Fatalf("Probe=%v %+v %v", prof.Name, info, err)
		}
	})
	t.Run("ErrNotDatecs", func(t *testing.T) {
		f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte { return nil })
		if _, _, err := datecs.Probe(ctx, f, opts); !errors.Is(err, datecs.ErrNotDatecs) {
			t.Fatalf("err=%v, want ErrNotDatecs", err)
		}
	})
}
