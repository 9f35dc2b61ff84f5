package datecs_test

import (
	"context"
	"hash/crc32"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
	"github.com/rs/zerolog"
)

// rig is a simulated printer on one transport, and a way to connect the
// driver to it (again, after a dropped line).
type rig struct {
	sim    *printer.Printer
	ledger *device.MemoryLedger
	spec   string
	opts   datecs.Options
}

// transports lists the ways a test can reach the simulator; pty_test.go
// adds the pty on systems that have one.
var transports = map[string]func(t *testing.T, sim *printer.Printer) string{
	"tcp": serveTCP,
}

// serveTCP serves sim on a loopback port until the test ends.
func serveTCP(t *testing.T, sim *printer.Printer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sim.ServeListener(ctx, ln); err != nil {
			t.Errorf("ServeListener: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return "tcp://" + ln.Addr().String()
}

// eachTransport runs fn once per transport with a fresh simulator.
func eachTransport(t *testing.T, simOpts printer.Options, fn func(t *testing.T, r *rig)) {
	for name, serve := range transports {
		t.Run(name, func(t *testing.T) {
			sim := printer.New(simOpts)
			r := &rig{sim: sim, ledger: &device.MemoryLedger{}}
			r.spec = serve(t, sim)
			r.opts = datecs.Options{
				Timeout: 150 * time.Millisecond,
				Resends: 3,
				Ledger:  r.ledger,
				Log:     zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel),
			}
			fn(t, r)
		})
	}
}

// connect opens the driver on the rig; the test's cleanup closes it. Like
// device.Link, it retries for a while: after a hang-up the pty link points
// at the dead slave until the simulator has put a new pty behind it.
func (r *rig) connect(t *testing.T) *datecs.Printer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		p, err := datecs.Open(ctx, r.spec, r.opts)
		if err == nil {
			t.Cleanup(func() { p.Close() })
			return p
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Open(%s): %v", r.spec, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sampleReceipt has several items (one with a quantity and a line
// discount), comment lines, a receipt-level discount and two payments.
func sampleReceipt(id string) device.Receipt {
	return device.Receipt{
		ID:     id,
		Header: device.ReceiptHeader{UniqueSaleNumber: sampleUNP(id)},
		Lines: []device.Line{
			{Item: device.Item{Name: "Cheese", VATGroup: 2, UnitPrice: 1200, Quantity: 2000}},
			{Comment: "Fresh from the farm"},
			{Item: device.Item{Name: "Milk", VATGroup: 2, UnitPrice: 1000, Quantity: 1500,
				Discount: device.Modifier{Kind: device.DiscountPercent, Value: 1000}}},
			{Item: device.Item{Name: "Bread", VATGroup: 4, UnitPrice: 250}},
			{Item: device.Item{Name: "Хляб ръжен", VATGroup: 1, UnitPrice: 199}},
		},
		Discount: device.Modifier{Kind: device.DiscountAmount, Value: 100},
		Payments: []device.Payment{{Mode: device.PayCard, Amount: 2000}, {Mode: device.PayCash, Amount: 3000}},
		Footer:   []string{"IIC E4033D471FEEA47A3C664B15C669C709", "https://mapr.tax.gov.me/ic/#/verify"},
	}
}

// sampleUNP is the unique sale number of document id: one per document,
// the same for every attempt at it, as the simulator (like a real sale
// register) refuses a UNP an earlier closed receipt carried.
func sampleUNP(id string) string {
	u, err := datecs.FormatUNP("DT000600", "0001", int(crc32.ChecksumIEEE([]byte(id))%9999999)+1)
	if err != nil {
		panic(err)
	}
	return u
}

// sampleTotal is sampleReceipt's total worked out by hand:
// 24.00 + (15.00 − 10 % = 13.50) + 2.50 + 1.99 = 41.99, − 1.00 = 40.99.
const sampleTotal = 4099
