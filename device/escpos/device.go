package escpos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/posgate/posgate/device"
)

// PortOptions are the line settings of an ESC/POS printer: TCP port 9100
// (the raw port of Epson's network interfaces and of most others), and
// 38400 baud 8N1 on a serial line (the TM-T88V/T20 factory setting; set
// the printer's baud in the config if its DIP or memory switches differ).
func PortOptions() device.PortOptions {
	return device.PortOptions{BaudRate: 38400, DefaultTCPPort: DefaultTCPPort}
}

// DefaultTCPPort is the raw printing port.
const DefaultTCPPort = 9100

// DeviceOptions configure a Device.
type DeviceOptions struct {
	Options
	// Notifier receives device.Degraded when the printer reports paper
	// out, cover open, a mechanism fault or offline, and device.Connected
	// when it is ready again; nil drops them.
	Notifier *device.Notifier
	// Poll is how often Run asks the printer's status while idle; default 5 s.
	Poll time.Duration
}

// Device is an ESC/POS printer behind a device.Link, which owns the port
// and reopens it after an unplug. Every call runs as one Link job; a
// print is one job from the status check to the confirmation.
type Device struct {
	link *device.Link
	opts DeviceOptions

	mu        sync.Mutex // guards port, pr, condition
	port      device.Port
	pr        *Printer
	condition string // what keeps it from printing, "" when ready
}

var (
	_ device.SlipPrinter    = (*Device)(nil)
	_ device.ReceiptPrinter = (*Device)(nil)
)

// NewDevice returns a printer on link; build the link with PortOptions
// (and OpenPort as its Open, for /dev/usb/lp* and USB printer-class
// devices). The caller runs link.Run and Run.
func NewDevice(link *device.Link, opts DeviceOptions) *Device {
	if link == nil {
		panic("escpos: NewDevice needs a link")
	}
	opts.Options = opts.Options.withDefaults()
	if opts.Poll <= 0 {
		opts.Poll = 5 * time.Second
	}
	return &Device{link: link, opts: opts}
}

// Link returns the link the device runs on.
func (d *Device) Link() *device.Link { return d.link }

func (d *Device) do(ctx context.Context, fn func(ctx context.Context, p *Printer) error) error {
	var pr *Printer
	err := d.link.Do(ctx, func(ctx context.Context, port device.Port) error {
		d.mu.Lock()
		if d.port != port || d.pr == nil {
			d.port, d.pr = port, New(port, d.opts.Options)
		}
		pr = d.pr
		d.mu.Unlock()
		return fn(ctx, pr)
	})
	if pr != nil {
		if st, ok := pr.LastStatus(); ok {
			d.observe(st)
		}
	}
	return err
}

// observe publishes a change of the printer's condition.
func (d *Device) observe(st Status) {
	cond := st.condition()
	d.mu.Lock()
	changed := cond != d.condition
	d.condition = cond
	d.mu.Unlock()
	if !changed {
		return
	}
	c := device.StateChange{DeviceID: d.link.ID(), Kind: device.Connected, At: time.Now().UTC()}
	if cond != "" {
		c.Kind, c.Err = device.Degraded, st.Err()
	}
	d.opts.Log.Info().Str("condition", cond).Msg("printer condition changed")
	d.opts.Notifier.Publish(c)
}

// Run asks the printer's status every Poll until ctx ends, so paper out
// and cover open become device.degraded events even while nothing prints.
// It returns nil when ctx ends.
func (d *Device) Run(ctx context.Context) error {
	t := time.NewTicker(d.opts.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 4*d.opts.ReplyTimeout+time.Second)
		_, err := d.Status(pctx)
		cancel()
		if err != nil && !errors.Is(err, device.ErrOffline) && ctx.Err() == nil {
			d.opts.Log.Debug().Err(err).Msg("printer status poll failed")
		}
	}
}

// Status asks the printer's real-time status.
func (d *Device) Status(ctx context.Context) (Status, error) {
	var st Status
	err := d.do(ctx, func(ctx context.Context, p *Printer) error {
		var err error
		st, err = p.Status(ctx)
		return err
	})
	return st, err
}

// Condition says what keeps the printer from printing as last seen
// ("paper out", "cover open", "mechanism fault", "offline"); "" when it
// was ready.
func (d *Device) Condition() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.condition
}

// PrintSlip implements device.SlipPrinter.
func (d *Device) PrintSlip(ctx context.Context, s device.Slip) (device.SlipResult, error) {
	var res device.SlipResult
	err := d.do(ctx, func(ctx context.Context, p *Printer) error {
		var err error
		res, err = p.PrintSlip(ctx, s)
		return err
	})
	return res, err
}

// PrintReceipt implements device.ReceiptPrinter.
func (d *Device) PrintReceipt(ctx context.Context, doc device.Receipt) (device.ReceiptResult, error) {
	var res device.ReceiptResult
	err := d.do(ctx, func(ctx context.Context, p *Printer) error {
		var err error
		res, err = p.PrintReceipt(ctx, doc)
		return err
	})
	return res, err
}

// String names the device for logs.
func (d *Device) String() string { return fmt.Sprintf("escpos printer %s", d.link.ID()) }
