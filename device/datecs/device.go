package datecs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/posgate/posgate/device"
)

// PortOptions are the line settings of Datecs X printers, for device.Open
// and device.LinkOptions: 115200 baud 8N1 (ErpNet.FP's default) and TCP
// port 4999.
func PortOptions() device.PortOptions {
	return device.PortOptions{BaudRate: 115200, DefaultTCPPort: DefaultTCPPort}
}

// Device is a Datecs printer behind a device.Link, which owns the port,
// runs one job at a time and reopens the port with backoff after an unplug.
// Every call runs as one Link job; PrintReceipt runs a whole document in
// one job. On each new connection the printer is probed again (New).
// Device implements device.Printer and device.ReceiptPrinter; a call made
// while the link is down fails with device.ErrOffline, one that loses the
// line with device.ErrDisconnected, and PrintReceipt called again after
// either resumes safely (its ledger is shared by all connections).
type Device struct {
	link *device.Link
	opts Options

	mu   sync.Mutex // guards port, pr, info
	port device.Port
	pr   *Printer
	info device.PrinterInfo
}

var (
	_ device.Printer        = (*Device)(nil)
	_ device.ReceiptPrinter = (*Device)(nil)
)

// NewDevice returns a printer on link. The caller runs link.Run; build the
// link with PortOptions.
func NewDevice(link *device.Link, opts Options) *Device {
	if link == nil {
		panic("datecs: NewDevice needs a link")
	}
	return &Device{link: link, opts: opts.withDefaults()}
}

// do runs fn with a Printer bound to the link's current port.
func (d *Device) do(ctx context.Context, fn func(ctx context.Context, p *Printer) error) error {
	return d.link.Do(ctx, func(ctx context.Context, port device.Port) error {
		d.mu.Lock()
		pr := d.pr
		if d.port != port {
			pr = nil
		}
		d.mu.Unlock()
		if pr == nil {
			var err error
			if pr, err = New(ctx, port, d.opts); err != nil {
				return err
			}
			d.mu.Lock()
			d.port, d.pr, d.info = port, pr, pr.Identity()
			d.mu.Unlock()
		}
		return fn(ctx, pr)
	})
}

func call[T any](ctx context.Context, d *Device, fn func(ctx context.Context, p *Printer) (T, error)) (T, error) {
	var out T
	err := d.do(ctx, func(ctx context.Context, p *Printer) error {
		var err error
		out, err = fn(ctx, p)
		return err
	})
	return out, err
}

// Identity returns the device info of the last connection, or the zero
// value before the first one.
func (d *Device) Identity() device.PrinterInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.info
}

// ProgrammedRates returns the VAT rates of groups A…H as the printer
// reported them (32h) when this connection was opened, connecting first
// if needed; fiscal.PrintJobs maps an invoice's rates with them.
func (d *Device) ProgrammedRates(ctx context.Context) ([8]int64, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) ([8]int64, error) { return p.Rates(), nil })
}

// PrintReceipt implements device.ReceiptPrinter.
func (d *Device) PrintReceipt(ctx context.Context, doc device.Receipt) (device.ReceiptResult, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (device.ReceiptResult, error) { return p.PrintReceipt(ctx, doc) })
}

// Info implements device.Printer.
func (d *Device) Info(ctx context.Context) (device.PrinterInfo, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (device.PrinterInfo, error) { return p.Info(ctx) })
}

// Status implements device.Printer.
func (d *Device) Status(ctx context.Context) (device.PrinterStatus, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (device.PrinterStatus, error) { return p.Status(ctx) })
}

// OpenReceipt implements device.Printer.
func (d *Device) OpenReceipt(ctx context.Context, h device.ReceiptHeader) (int, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (int, error) { return p.OpenReceipt(ctx, h) })
}

// OpenStorno implements device.Printer.
func (d *Device) OpenStorno(ctx context.Context, h device.StornoHeader) (int, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (int, error) { return p.OpenStorno(ctx, h) })
}

// AddItem implements device.Printer.
func (d *Device) AddItem(ctx context.Context, it device.Item) error {
	return d.do(ctx, func(ctx context.Context, p *Printer) error { return p.AddItem(ctx, it) })
}

// AddComment implements device.Printer.
func (d *Device) AddComment(ctx context.Context, text string) error {
	return d.do(ctx, func(ctx context.Context, p *Printer) error { return p.AddComment(ctx, text) })
}

// Subtotal implements device.Printer.
func (d *Device) Subtotal(ctx context.Context, m device.Modifier) (device.Subtotal, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (device.Subtotal, error) { return p.Subtotal(ctx, m) })
}

// AddPayment implements device.Printer.
func (d *Device) AddPayment(ctx context.Context, pay device.Payment) (device.PaymentResult, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (device.PaymentResult, error) { return p.AddPayment(ctx, pay) })
}

// CloseReceipt implements device.Printer.
func (d *Device) CloseReceipt(ctx context.Context) (int, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (int, error) { return p.CloseReceipt(ctx) })
}

// CancelReceipt implements device.Printer.
func (d *Device) CancelReceipt(ctx context.Context) error {
	return d.do(ctx, func(ctx context.Context, p *Printer) error { return p.CancelReceipt(ctx) })
}

// PrintText implements device.Printer.
func (d *Device) PrintText(ctx context.Context, lines []string) error {
	return d.do(ctx, func(ctx context.Context, p *Printer) error { return p.PrintText(ctx, lines) })
}

// XReport implements device.Printer.
func (d *Device) XReport(ctx context.Context) (device.Report, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (device.Report, error) { return p.XReport(ctx) })
}

// ZReport implements device.Printer.
func (d *Device) ZReport(ctx context.Context) (device.Report, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (device.Report, error) { return p.ZReport(ctx) })
}

// Cash implements device.Printer.
func (d *Device) Cash(ctx context.Context, kind device.CashKind, amount int64) (device.CashState, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (device.CashState, error) { return p.Cash(ctx, kind, amount) })
}

// DateTime implements device.Printer.
func (d *Device) DateTime(ctx context.Context) (time.Time, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (time.Time, error) { return p.DateTime(ctx) })
}

// SetDateTime implements device.Printer.
func (d *Device) SetDateTime(ctx context.Context, t time.Time) error {
	return d.do(ctx, func(ctx context.Context, p *Printer) error { return p.SetDateTime(ctx, t) })
}

// Transaction implements device.Printer.
func (d *Device) Transaction(ctx context.Context) (device.TransactionStatus, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (device.TransactionStatus, error) { return p.Transaction(ctx) })
}

// LastReceipt implements device.Printer.
func (d *Device) LastReceipt(ctx context.Context) (device.LastReceipt, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (device.LastReceipt, error) { return p.LastReceipt(ctx) })
}

// Close implements device.Printer. The link owns the port: stop it by
// cancelling the context its Run was given.
func (d *Device) Close() error { return nil }

// String names the device for logs.
func (d *Device) String() string { return fmt.Sprintf("datecs printer %s", d.link.ID()) }

// LastDocument reads the open or last receipt and the last fiscal receipt's
// QR fields (4Ah option 0); see Printer.LastDocument.
func (d *Device) LastDocument(ctx context.Context) (LastDocument, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (LastDocument, error) { return p.LastDocument(ctx) })
}

// LastQRData reads the QR code string of the last fiscal document (4Ah
// option 1); see Printer.LastQRData.
func (d *Device) LastQRData(ctx context.Context) (string, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (string, error) { return p.LastQRData(ctx) })
}

// Duplicate prints the duplicate copy of the last receipt (6Dh); see
// Printer.Duplicate.
func (d *Device) Duplicate(ctx context.Context) error {
	return d.do(ctx, func(ctx context.Context, p *Printer) error { return p.Duplicate(ctx) })
}

// SyncClock sets the printer's clock to now() when it is off by more than
// tolerance; see Printer.SyncClock.
func (d *Device) SyncClock(ctx context.Context, now func() time.Time, tolerance time.Duration) (ClockSync, error) {
	return call(ctx, d, func(ctx context.Context, p *Printer) (ClockSync, error) { return p.SyncClock(ctx, now, tolerance) })
}
