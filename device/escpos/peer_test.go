package escpos_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/escpos"
)

// peer is a minimal ESC/POS printer written from the reference alone,
// sharing no code with the driver or the simulator: it answers DLE EOT n
// (10 04 n) with the byte set in answers[n], and GS r 1 (1D 72 01) with
// 00h (paper present), and records every byte it receives.
type peer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	got     []byte
	answers [5]byte
	hold    bool // never answer GS r: the printer holds the job (real-time requests are still answered)
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{ln: ln, answers: [5]byte{0, 0x16, 0x12, 0x12, 0x12}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *peer) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			var buf [512]byte
			var scan []byte
			for {
				n, err := c.Read(buf[:])
				if err != nil {
					return
				}
				p.mu.Lock()
				p.got = append(p.got, buf[:n]...)
				scan = append(scan, buf[:n]...)
				var out []byte
				for {
					i := bytes.IndexAny(scan, "\x10\x1d")
					if i < 0 || len(scan)-i < 3 {
						if i < 0 {
							scan = scan[:0]
						} else {
							scan = scan[i:]
						}
						break
					}
					switch {
					case scan[i] == 0x10 && scan[i+1] == 0x04 && scan[i+2] >= 1 && scan[i+2] <= 4:
						out = append(out, p.answers[scan[i+2]])
					case scan[i] == 0x1d && scan[i+1] == 'r' && scan[i+2] == 1 && !p.hold:
						out = append(out, 0x00)
					}
					scan = scan[i+1:]
				}
				p.mu.Unlock()
				if len(out) > 0 {
					c.Write(out)
				}
			}
		}()
	}
}

func (p *peer) received() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.got...)
}

func (p *peer) set(fn func(p *peer)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p)
}

func dialPeer(t *testing.T, p *peer) device.Port {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	port, err := escpos.OpenPort(ctx, "tcp://"+p.ln.Addr().String(), escpos.PortOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	return port
}

// A whole job, byte for byte, as the reference's sections compose it.
func TestPeerGoldenJob(t *testing.T) {
	p := newPeer(t)
	pr := escpos.New(dialPeer(t, p), escpos.Options{Log: zerolog.New(zerolog.NewTestWriter(t))})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slip := device.Slip{ID: "inv-1", QR: "https://x.me/v?i=1", Lines: []device.SlipLine{
		{Text: "Žabljak", Align: device.AlignCenter, Bold: true, Double: true},
		{Text: "IIC 0A1B"},
	}}
	res, err := pr.PrintSlip(ctx, slip)
	if err != nil {
		t.Fatal(err)
	}
	if res.Copy || res.Recovered {
		t.Errorf("result %+v: want an original, freshly printed", res)
	}
	want := unhex(t, ""+
		"10 04 01 10 04 02 10 04 03 10 04 04"+ // DLE EOT 1…4 before the job
		"1B 40"+ // ESC @
		"1D 61 0E"+ // GS a: ASB for online, error, paper
		"1B 74 12"+ // ESC t 18: PC852
		"1B 61 01 1B 45 01 1D 21 11"+ // centre, bold, double
		"A6 61 62 6C 6A 61 6B 0A"+ // "Žabljak" in CP852, LF
		"1B 61 00 1B 45 00 1D 21 00"+ // left, normal
		"49 49 43 20 30 41 31 42 0A"+ // "IIC 0A1B" LF
		"1B 61 01"+ // centre the QR
		"1D 28 6B 04 00 31 41 32 00"+ // fn 165 model 2
		"1D 28 6B 03 00 31 43 06"+ // fn 167 size 6
		"1D 28 6B 03 00 31 45 31"+ // fn 169 level M
		"1D 28 6B 15 00 31 50 30"+ // fn 180 store, k = 18 + 3
		"68 74 74 70 73 3A 2F 2F 78 2E 6D 65 2F 76 3F 69 3D 31"+ // https://x.me/v?i=1
		"1D 28 6B 03 00 31 51 30 0A"+ // fn 181 print, LF
		"1B 61 00"+ // left
		"1D 56 42 00"+ // GS V 66 0: feed and cut
		"1D 72 01") // GS r 1: confirms the job was processed
	if got := p.received(); !bytes.Equal(got, want) {
		t.Errorf("printer received\n% X\nwant\n% X", got, want)
	}
}

// A printer that answers DLE EOT with paper end gets no job, and the
// error tells the print jobs to wait.
func TestPeerPaperOutBeforeJob(t *testing.T) {
	p := newPeer(t)
	// DLE EOT 1: offline; 2: stopped by paper end; 4: paper end sensor.
	p.set(func(p *peer) { p.answers = [5]byte{0, 0x3A, 0x32, 0x12, 0x7E} })
	pr := escpos.New(dialPeer(t, p), escpos.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pr.PrintSlip(ctx, device.Slip{ID: "inv-2", Lines: []device.SlipLine{{Text: "x"}}})
	if !errors.Is(err, device.ErrPaperOut) {
		t.Fatalf("PrintSlip = %v, want ErrPaperOut", err)
	}
	if got, want := p.received(), unhex(t, "10 04 01 10 04 02 10 04 03 10 04 04"); !bytes.Equal(got, want) {
		t.Errorf("printer received % X, want only the status requests % X", got, want)
	}
	// Paper back: the document prints as the original, not as a copy.
	p.set(func(p *peer) { p.answers = [5]byte{0, 0x16, 0x12, 0x12, 0x12} })
	res, err := pr.PrintSlip(ctx, device.Slip{ID: "inv-2", Lines: []device.SlipLine{{Text: "x"}}})
	if err != nil || res.Copy {
		t.Fatalf("PrintSlip after paper in = %+v, %v; want the original", res, err)
	}
	if bytes.Contains(p.received(), []byte("DUPLIKAT")) {
		t.Error("the first print of a document carries the copy mark")
	}
}

// A printer that never confirms the job (it holds it): the attempt is
// interrupted, and the retry is a marked copy that starts with a cut.
func TestPeerUnconfirmedJobIsReprintedAsCopy(t *testing.T) {
	p := newPeer(t)
	ledger := &device.MemoryLedger{}
	opts := escpos.Options{Ledger: ledger, PrintTimeout: 300 * time.Millisecond}
	pr := escpos.New(dialPeer(t, p), opts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slip := device.Slip{ID: "inv-3", Lines: []device.SlipLine{{Text: "item"}}}
	p.set(func(p *peer) { p.hold = true })
	_, err := pr.PrintSlip(ctx, slip)
	if !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("PrintSlip = %v, want a timeout", err)
	}
	p.set(func(p *peer) { p.hold = false; p.got = nil })
	res, err := escpos.New(dialPeer(t, p), opts).PrintSlip(ctx, slip)
	if err != nil || !res.Copy {
		t.Fatalf("retry = %+v, %v; want a copy", res, err)
	}
	got := p.received()
	job := got[12:] // after DLE EOT 1…4
	if !bytes.HasPrefix(job, unhex(t, "1B 40 1D 56 42 00")) {
		t.Errorf("copy job starts % X, want ESC @ then GS V 66 0", job[:min(len(job), 6)])
	}
	if n := bytes.Count(got, []byte(escpos.CopyMark)); n != 2 {
		t.Errorf("copy mark printed %d times, want 2 (top and bottom)", n)
	}
	// Confirmed now: a third call sends nothing.
	p.set(func(p *peer) { p.got = nil })
	res, err = pr.PrintSlip(ctx, slip)
	if err != nil || !res.Recovered {
		t.Fatalf("third call = %+v, %v; want recovered", res, err)
	}
	if got := p.received(); len(got) != 0 {
		t.Errorf("third call sent % X, want nothing", got)
	}
}
