package escpos_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/escpos"
	"github.com/posgate/posgate/simulator"
	simescpos "github.com/posgate/posgate/simulator/escpos"
)

// transports serve a simulator and return the spec the driver opens.
var transports = map[string]func(t *testing.T, sim *simescpos.Printer) string{"tcp": serveTCP}

func serveTCP(t *testing.T, sim *simescpos.Printer) string {
	t.Helper()
	srv, err := simulator.ServeTCP(context.Background(), "127.0.0.1:0", sim.Handle, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "tcp://" + srv.Addr()
}

func open(t *testing.T, spec string) device.Port {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := escpos.OpenPort(ctx, spec, escpos.PortOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

const verifyURL = "https://efitest.tax.gov.me/ic/#/verify?iic=6F2C0A1B&tin=12345678&crtd=2026-12-06T15:04:05+01:00&ord=7&bu=xx123yy456&cr=ab123cd456&sw=ss123ss123&prc=12.10"

func receipt(id string) device.Receipt {
	return device.Receipt{
		ID: id,
		Lines: []device.Line{
			{Item: device.Item{Name: "Čevapi sa lukom", VATGroup: 1, UnitPrice: 550, Quantity: 2000}},
			{Item: device.Item{Name: "Đus od šljive", VATGroup: 2, UnitPrice: 110, Quantity: 1000,
				Discount: device.Modifier{Kind: device.DiscountAmount, Value: 10}}},
		},
		Payments: []device.Payment{{Mode: device.PayCash, Amount: 2000}},
		Footer:   []string{"No 7/2026", "IIC 6F2C0A1B", "FIC 0d7b7c5e-1f2a-4b3c-9d8e-7f6a5b4c3d2e"},
		QR:       verifyURL,
	}
}

func texts(r simescpos.Receipt) []string {
	var out []string
	for _, l := range r.Lines {
		out = append(out, l.Text)
	}
	return out
}

func hasLine(r simescpos.Receipt, prefix string) bool {
	for _, l := range r.Lines {
		if strings.HasPrefix(l.Text, prefix) {
			return true
		}
	}
	return false
}

func forEachTransport(t *testing.T, fn func(t *testing.T, serve func(*testing.T, *simescpos.Printer) string)) {
	for name, serve := range transports {
		t.Run(name, func(t *testing.T) { fn(t, serve) })
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A fiscal receipt printed on the simulator: the letters, the IIC, FIC and
// the QR code whose payload the simulator decodes is the verification URL.
func TestSimReceipt(t *testing.T) {
	forEachTransport(t, func(t *testing.T, serve func(*testing.T, *simescpos.Printer) string) {
		sim := simescpos.New(simescpos.Options{})
		pr := escpos.New(open(t, serve(t, sim)), escpos.Options{Log: zerolog.New(zerolog.NewTestWriter(t))})
		res, err := pr.PrintReceipt(testCtx(t), receipt("inv-1"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Amount != 1200 || res.Recovered {
			t.Errorf("result %+v, want amount 12.00, not recovered", res)
		}
		j := sim.Journal()
		if len(j) != 1 {
			t.Fatalf("journal has %d receipts, want 1", len(j))
		}
		if qr := j[0].QRPayloads(); len(qr) != 1 || qr[0] != verifyURL {
			t.Errorf("decoded QR = %q, want %q", qr, verifyURL)
		}
		for _, want := range []string{"Čevapi sa lukom", "Đus od šljive", "TOTAL", "Change", "IIC 6F2C0A1B", "FIC 0d7b7c5e"} {
			if !hasLine(j[0], want) {
				t.Errorf("receipt lacks %q:\n%s", want, j[0].Text())
			}
		}
		if hasLine(j[0], escpos.CopyMark) {
			t.Error("an original carries the copy mark")
		}
	})
}

// Paper runs out in the middle of the receipt and is put back while the
// job waits: the receipt is finished from the printer's buffer, once,
// complete, and not as a copy.
func TestSimPaperOutMidReceiptWaits(t *testing.T) {
	forEachTransport(t, func(t *testing.T, serve func(*testing.T, *simescpos.Printer) string) {
		ref := simescpos.New(simescpos.Options{})
		if _, err := escpos.New(open(t, serve(t, ref)), escpos.Options{}).PrintReceipt(testCtx(t), receipt("ref")); err != nil {
			t.Fatal(err)
		}
		sim := simescpos.New(simescpos.Options{})
		sim.PaperOutAfter(3)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(5 * time.Second)
			for sim.Counters().Lines < 3 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond) // the job waits
			sim.SetPaperOut(false)
		}()
		pr := escpos.New(open(t, serve(t, sim)), escpos.Options{PrintTimeout: 10 * time.Second})
		res, err := pr.PrintReceipt(testCtx(t), receipt("inv-2"))
		wg.Wait()
		if err != nil || res.Recovered {
			t.Fatalf("PrintReceipt = %+v, %v; want printed as the original", res, err)
		}
		j := sim.Journal()
		if len(j) != 1 {
			t.Fatalf("journal has %d receipts, want 1", len(j))
		}
		if got, want := texts(j[0]), texts(ref.Journal()[0]); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("receipt after paper change\n%q\nwant the complete receipt\n%q", got, want)
		}
	})
}

// Paper stays out past the job's wait: the job fails (not ready, so the
// print job waits), later tries find the printer out of paper and send
// nothing; paper in, the printer finishes the original from its buffer;
// the next try prints a marked copy (the driver cannot know the original
// finished); after that, nothing is ever sent again, even by a new
// driver (a restart) on the same ledger.
func TestSimPaperOutOutlastsJob(t *testing.T) {
	forEachTransport(t, func(t *testing.T, serve func(*testing.T, *simescpos.Printer) string) {
		sim := simescpos.New(simescpos.Options{})
		spec := serve(t, sim)
		ledger := &device.MemoryLedger{}
		opts := escpos.Options{Ledger: ledger, PrintTimeout: time.Second}
		pr := escpos.New(open(t, spec), opts)
		ctx := testCtx(t)
		sim.PaperOutAfter(3)
		if _, err := pr.PrintReceipt(ctx, receipt("inv-3")); !errors.Is(err, device.ErrPaperOut) {
			t.Fatalf("PrintReceipt = %v, want ErrPaperOut", err)
		}
		if _, err := pr.PrintReceipt(ctx, receipt("inv-3")); !errors.Is(err, device.ErrPaperOut) {
			t.Fatalf("retry while out of paper = %v, want ErrPaperOut", err)
		}
		sim.SetPaperOut(false)
		res, err := pr.PrintReceipt(ctx, receipt("inv-3"))
		if err != nil || !res.Recovered || !res.Finished {
			t.Fatalf("retry with paper = %+v, %v; want a copy", res, err)
		}
		j := sim.Journal()
		if len(j) != 2 {
			t.Fatalf("journal has %d receipts, want the original and one copy", len(j))
		}
		orig, cp := texts(j[0]), texts(j[1])
		if hasLine(j[0], escpos.CopyMark) || !hasLine(j[0], "TOTAL") {
			t.Errorf("original is not a complete unmarked receipt:\n%s", j[0].Text())
		}
		if cp[0] != escpos.CopyMark || cp[len(cp)-1] != escpos.CopyMark ||
			fmt.Sprint(cp[1:len(cp)-1]) != fmt.Sprint(orig) {
			t.Errorf("copy is not the original framed by the copy mark:\n%q\n%q", cp, orig)
		}
		again := escpos.New(open(t, spec), opts)
		if res, err := again.PrintReceipt(ctx, receipt("inv-3")); err != nil || !res.Recovered {
			t.Fatalf("after a restart = %+v, %v; want recovered", res, err)
		}
		if n := len(sim.Journal()); n != 2 {
			t.Fatalf("journal has %d receipts after the restart, want still 2", n)
		}
	})
}

// cutPort loses the line after n bytes of writing, as when the cable is
// pulled or the daemon dies mid-job.
type cutPort struct {
	device.Port
	left int
}

var errPulled = errors.New("cable pulled")

func (c *cutPort) Write(b []byte) (int, error) {
	if len(b) > c.left {
		n, _ := c.Port.Write(b[:c.left])
		c.left = 0
		return n, errPulled
	}
	c.left -= len(b)
	return c.Port.Write(b)
}

// A job cut off mid-write is re-sent whole as a marked copy, which first
// cuts the partial original off the roll.
func TestSimInterruptedWriteIsCopy(t *testing.T) {
	forEachTransport(t, func(t *testing.T, serve func(*testing.T, *simescpos.Printer) string) {
		sim := simescpos.New(simescpos.Options{})
		spec := serve(t, sim)
		ledger := &device.MemoryLedger{}
		ctx := testCtx(t)
		pr := escpos.New(&cutPort{Port: open(t, spec), left: 12 + 60}, escpos.Options{Ledger: ledger})
		if _, err := pr.PrintReceipt(ctx, receipt("inv-4")); !errors.Is(err, errPulled) {
			t.Fatalf("PrintReceipt = %v, want the write error", err)
		}
		res, err := escpos.New(open(t, spec), escpos.Options{Ledger: ledger}).PrintReceipt(ctx, receipt("inv-4"))
		if err != nil || !res.Finished {
			t.Fatalf("retry = %+v, %v; want a copy", res, err)
		}
		j := sim.Journal()
		if len(j) != 2 {
			t.Fatalf("journal has %d receipts, want the cut-off part and the copy", len(j))
		}
		if hasLine(j[0], "TOTAL") || hasLine(j[0], escpos.CopyMark) {
			t.Errorf("first slip should be the partial original:\n%s", j[0].Text())
		}
		if !hasLine(j[1], escpos.CopyMark) || !hasLine(j[1], "TOTAL") || len(j[1].QRPayloads()) != 1 {
			t.Errorf("second slip should be a complete marked copy:\n%s", j[1].Text())
		}
	})
}

// Paper out and cover open while idle are device.degraded events; back
// to normal is device.connected.
func TestDeviceDegradedEvents(t *testing.T) {
	sim := simescpos.New(simescpos.Options{})
	spec := serveTCP(t, sim)
	n := &device.Notifier{}
	events, unsub := n.SubscribeChan(16)
	defer unsub()
	log := zerolog.New(zerolog.NewTestWriter(t))
	link := device.NewLink(device.LinkOptions{ID: "r1", Spec: spec, Port: escpos.PortOptions(), Log: log,
		Notifier: n, Open: escpos.OpenPort})
	d := escpos.NewDevice(link, escpos.DeviceOptions{Notifier: n, Poll: 30 * time.Millisecond, Options: escpos.Options{Log: log}})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); link.Run(ctx) }()
	go func() { defer wg.Done(); d.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	next := func(kind device.StateKind, want error) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case c := <-events:
				if c.Kind != kind {
					continue
				}
				if want != nil && !errors.Is(c.Err, want) {
					t.Fatalf("%s with %v, want %v", kind, c.Err, want)
				}
				return
			case <-timeout:
				t.Fatalf("no %s event", kind)
			}
		}
	}
	next(device.Connected, nil)
	sim.SetPaperOut(true)
	next(device.Degraded, device.ErrPaperOut)
	if got := d.Condition(); got != "paper out" {
		t.Errorf("Condition = %q, want paper out", got)
	}
	sim.SetPaperOut(false)
	next(device.Connected, nil)
	sim.SetCoverOpen(true)
	next(device.Degraded, device.ErrCoverOpen)
	sim.SetCoverOpen(false)
	next(device.Connected, nil)

	// And it prints through the link.
	if _, err := d.PrintSlip(ctx, device.Slip{ID: "s1", Lines: []device.SlipLine{{Text: "ok"}}}); err != nil {
		t.Fatal(err)
	}
	if j := sim.Journal(); len(j) != 1 || j[0].Lines[0].Text != "ok" {
		t.Fatalf("journal = %+v", j)
	}
}
