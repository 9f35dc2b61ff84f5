package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/observe"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/printer"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/posgate/posgate/store"
)

// vatGroupsFor maps the country profile's VAT rates (hundredths of a
// percent) to printer groups A…H (newProfile). With a fiscal printer,
// invoices take the rates the printer reports instead
// (fiscal.PrinterRates); this table is for invoices without one and for
// the printer `serve --simulate` programs.
func vatGroupsFor(f FiscalConfig) map[int64]int {
	cp, err := newProfile(f, profileDeps{})
	if err != nil {
		return nil // refused with the configuration
	}
	return cp.VATGroups
}

// openPrinters builds one driver per configured printer, each behind a
// Link that owns its port and reconnects after an unplug. The caller runs
// every returned link.
func openPrinters(cfg Config, db *store.DB, log zerolog.Logger, notifier *device.Notifier) (map[string]*datecs.Device, []*device.Link) {
	printers := map[string]*datecs.Device{}
	var links []*device.Link
	for _, pc := range cfg.Printers {
		if pc.Protocol == "escpos" {
			continue // openReceiptPrinters
		}
		plog := log.With().Str(logkey.Component, "printer").Str(logkey.DeviceID, pc.ID).Logger()
		opts := datecs.PortOptions()
		opts.BaudRate = pc.Baud
		link := device.NewLink(device.LinkOptions{ID: pc.ID, Spec: pc.Port, Port: opts, Log: plog, Notifier: notifier})
		var tolerance time.Duration
		if pc.ClockTolerance != nil {
			tolerance = pc.ClockTolerance.Duration
		}
		printers[pc.ID] = datecs.NewDevice(link, datecs.Options{Profile: datecs.X, Ledger: fiscal.NewLedger(db), Log: plog,
			OnConnect:      saveRates(fiscal.NewPrinterRates(db), pc.ID, plog),
			ClockTolerance: tolerance, OnClockSync: clockEvent(db, pc.ID, plog)})
		links = append(links, link)
	}
	return printers, links
}

// saveRates records the VAT rates a printer reports on each connection;
// invoices are checked against them (fiscal.InvoicesOptions.PrinterRates).
func saveRates(rates *fiscal.PrinterRates, id string, log zerolog.Logger) func(context.Context, device.PrinterInfo, datecs.VATRates) {
	return func(ctx context.Context, _ device.PrinterInfo, v datecs.VATRates) {
		if err := rates.Save(ctx, id, v); err != nil {
			// Invoices keep the rates of the last connection; the driver
			// still refuses an item its group's rate does not match.
			log.Error().Err(err).Msg("printer VAT rates not saved")
		}
	}
}

// openTerminals builds one ZVT client per configured terminal; each owns
// its port through a Link that reconnects after an unplug. The caller runs
// every client.
func openTerminals(cfg Config, log zerolog.Logger, notifier *device.Notifier) (map[string]*zvt.Client, error) {
	terminals := map[string]*zvt.Client{}
	for i, tc := range cfg.Terminals {
		if tc.Protocol != "zvt" {
			continue
		}
		opts := zvt.Options{
			ID:       tc.ID,
			Spec:     tc.Port,
			Password: tc.Password,
			Currency: tc.Currency,
			Port:     device.PortOptions{BaudRate: tc.Baud, StopBits: 2},
			Log:      log.With().Str(logkey.Component, "terminal").Str(logkey.DeviceID, tc.ID).Logger(),
			Notifier: notifier,
		}
		if err := opts.Validate(); err != nil {
			return nil, &ConfigError{Key: fmt.Sprintf("terminals[%d]", i), Value: tc.ID, Err: err}
		}
		tlsCfg, err := tc.zvtTLS(fmt.Sprintf("terminals[%d]", i))
		if err != nil {
			return nil, err
		}
		opts.TLS, opts.SequenceIDs, opts.DiagnosisEvery = tlsCfg, tc.SequenceIDs, tc.DiagnosisEvery.Duration
		terminals[tc.ID] = zvt.New(opts)
	}
	return terminals, nil
}

// deviceStates reports each device's line for /healthz: online, or
// offline with the last error.
func deviceStates(links []*device.Link) map[string]any {
	out := map[string]any{}
	for _, l := range links {
		online, err := l.State()
		st := map[string]any{"state": "online"}
		if !online {
			st["state"] = "offline"
			if err != nil {
				st["last_error"] = err.Error()
			}
		}
		out[l.ID()] = st
	}
	return out
}

// terminalHealth adds to each ZVT terminal's /healthz entry what it said to
// the last Status Enquiry (the idle poll, PA00P015 §2.56) and how its last
// Diagnosis went (the host-link check).
func terminalHealth(devs map[string]any, terminals map[string]*zvt.Client) {
	for id, c := range terminals {
		m, ok := devs[id].(map[string]any)
		if !ok {
			continue
		}
		if st, at, err := c.LastStatus(); !at.IsZero() {
			m["terminal_status"] = st.Text
			m["status_at"] = at.UTC().Format(time.RFC3339)
			if err != nil {
				m["terminal_status"] = "no answer: " + err.Error()
			}
		}
		if at, err, ran := c.LastDiagnosis(); ran {
			switch {
			case err == nil:
				m["diagnosis"] = "ok"
			case errors.Is(err, zvt.ErrNotSupported):
				m["diagnosis"] = "not supported by the terminal"
			default:
				m["diagnosis"] = "failed: " + err.Error()
			}
			m["diagnosis_at"] = at.UTC().Format(time.RFC3339)
		}
	}
}

// traces collects each terminal's ring of recent frames for the API.
func traces(terminals map[string]*zvt.Client) map[string]*device.Trace {
	m := make(map[string]*device.Trace, len(terminals))
	for id, c := range terminals {
		m[id] = c.Trace()
	}
	return m
}

// paymentTerminals describes the configured terminals to the payment
// service, each with its driver and line state.
func paymentTerminals(cfg Config, clients map[string]*zvt.Client) []payment.Terminal {
	var ts []payment.Terminal
	for _, tc := range cfg.Terminals {
		c := clients[tc.ID]
		if c == nil {
			continue // another protocol's
		}
		ts = append(ts, payment.Terminal{
			ID:       tc.ID,
			Device:   c,
			Online:   func() bool { online, _ := c.Link().State(); return online },
			Currency: tc.Currency,
			Protocol: tc.Protocol,
			Port:     tc.Port,
		})
	}
	return ts
}

// startTerminalSimulator serves a simulated ZVT terminal on a pty for
// --simulate and makes it terminal t1. Its receipts are rendered to out.
func startTerminalSimulator(ctx context.Context, cfg *Config, out io.Writer, log zerolog.Logger) (*simulator.PTY, error) {
	sim := terminal.New(terminal.Options{
		Receipts: out,
		Log:      log.With().Str(logkey.Component, "sim-terminal").Logger(),
	})
	pty, err := simulator.ServePTY(ctx, sim.ServeSerial, simulator.PTYOptions{Log: log})
	if err != nil {
		return nil, fmt.Errorf("start simulated terminal: %w", err)
	}
	setDevice(&cfg.Terminals, TerminalConfig{ID: "t1", Protocol: "zvt", Port: pty.Path(), Baud: 9600,
		Password: "000000", Currency: "EUR"})
	return pty, nil
}

// startPrinterSimulator serves a simulated Datecs printer on a pty for
// --simulate and makes it printer p1. Every finished document is rendered
// to out, as a technician would see it come out of the printer.
func startPrinterSimulator(ctx context.Context, cfg *Config, out io.Writer, log zerolog.Logger) (*simulator.PTY, error) {
	// The groups the country uses; the others are disabled (100.00 %).
	rates := [8]int64{}
	for i := range rates {
		rates[i] = datecs.RateDisabled
	}
	for rate, group := range vatGroupsFor(cfg.Fiscal) {
		rates[group-1] = rate
	}
	var mu sync.Mutex
	sim := printer.New(printer.Options{
		VATRates: &rates,
		Log:      log.With().Str(logkey.Component, "sim-printer").Logger(),
		OnDocument: func(d printer.Document) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(out, "\n--- simulated printer p1 ---\n%s\n", d.Text)
		},
	})
	pty, err := simulator.ServePTY(ctx, sim.Handle, simulator.PTYOptions{Log: log})
	if err != nil {
		return nil, fmt.Errorf("start simulated printer: %w", err)
	}
	setDevice(&cfg.Printers, PrinterConfig{ID: "p1", Protocol: "datecs-x", Port: pty.Path(), Baud: 115200})
	return pty, nil
}

// setDevice replaces the device with c's id in list, or appends c.
func setDevice[T interface{ PrinterConfig | TerminalConfig }](list *[]T, c T) {
	id := func(v T) string {
		switch x := any(v).(type) {
		case PrinterConfig:
			return x.ID
		case TerminalConfig:
			return x.ID
		}
		return ""
	}
	for i, v := range *list {
		if id(v) == id(c) {
			(*list)[i] = c
			return
		}
	}
	*list = append(*list, c)
}

// deviceEvents turns device state changes into device.connected and
// device.disconnected events in the outbox. Links publish without
// blocking; this loop owns the writes, so a slow store never stalls a
// port's goroutine. Changes beyond the buffer are dropped and counted.
type deviceEvents struct {
	relay *outbox.Relay
	log   zerolog.Logger
	ch    chan device.StateChange
	mu    sync.Mutex
	lost  int
}

func newDeviceEvents(relay *outbox.Relay, log zerolog.Logger, n *device.Notifier) *deviceEvents {
	de := &deviceEvents{relay: relay, log: log, ch: make(chan device.StateChange, 256)}
	n.Subscribe(func(c device.StateChange) {
		observe.DeviceStateChanged(c.DeviceID, deviceState(c.Kind))
		select {
		case de.ch <- c:
		default:
			de.mu.Lock()
			de.lost++
			de.mu.Unlock()
		}
	})
	return de
}

// deviceState is the metric label of a state change.
func deviceState(k device.StateKind) string {
	if k == device.Disconnected {
		return "offline"
	}
	return "online"
}

// Run writes events until ctx ends.
func (de *deviceEvents) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-de.ch:
			data := map[string]any{"device_id": c.DeviceID, "port": c.Port, "at": c.At.UTC().Format(time.RFC3339Nano)}
			if c.Err != nil {
				data["error"] = c.Err.Error()
			}
			b, err := json.Marshal(data)
			if err != nil {
				return fmt.Errorf("encode device event: %w", err)
			}
			if _, err := de.relay.Enqueue(ctx, outbox.Event{Type: string(c.Kind), Data: b, Time: c.At}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				de.log.Error().Err(err).Str(logkey.DeviceID, c.DeviceID).Msg("record device event")
			}
			de.mu.Lock()
			if de.lost > 0 {
				de.log.Warn().Int("count", de.lost).Msg("device events dropped: too many state changes at once")
				de.lost = 0
			}
			de.mu.Unlock()
		}
	}
}

// clockEvent emits printer.clock_set when a printer's clock was set on
// connect (or setting it failed): the fiscal record's times come from
// that clock, so a head office wants to know.
func clockEvent(db *store.DB, id string, log zerolog.Logger) func(context.Context, device.PrinterInfo, datecs.ClockSync, error) {
	return func(ctx context.Context, info device.PrinterInfo, cs datecs.ClockSync, err error) {
		if !cs.Set && err == nil {
			return
		}
		data := map[string]any{"printer_id": id, "serial": info.Serial, "fiscal_memory": info.FiscalMemory,
			"printer_time": cs.Printer, "host_time": cs.Host, "drift_seconds": cs.Drift.Seconds(), "set": cs.Set}
		if err != nil {
			data["error"] = err.Error()
		}
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			return fiscal.EmitToOutbox(ctx, tx, "printer.clock_set", data)
		}); err != nil {
			log.Error().Err(err).Msg("printer clock event not recorded")
		}
	}
}
