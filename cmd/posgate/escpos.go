package main

import (
	"github.com/rs/zerolog"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/device/escpos"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
)

// openReceiptPrinters builds one ESC/POS driver per printer configured with
// protocol "escpos", each behind a Link that opens /dev/usb/lp*,
// usb:VID:PID (printer class or serial), serial paths and tcp://host:9100,
// and reconnects after an unplug. The caller runs every link and every
// device (its status poll turns paper out and cover open into
// device.degraded events).
func openReceiptPrinters(cfg Config, db *store.DB, log zerolog.Logger, notifier *device.Notifier) (map[string]*escpos.Device, []*device.Link) {
	printers := map[string]*escpos.Device{}
	var links []*device.Link
	for _, pc := range cfg.Printers {
		if pc.Protocol != "escpos" {
			continue
		}
		plog := log.With().Str(logkey.Component, "printer").Str(logkey.DeviceID, pc.ID).Logger()
		opts := escpos.PortOptions()
		opts.BaudRate = pc.Baud
		link := device.NewLink(device.LinkOptions{ID: pc.ID, Spec: pc.Port, Port: opts, Log: plog,
			Notifier: notifier, Open: escpos.OpenPort})
		page, _ := escpos.CodePageByName(pc.CodePage) // validated with the config
		printers[pc.ID] = escpos.NewDevice(link, escpos.DeviceOptions{Notifier: notifier,
			Options: escpos.Options{CodePage: page, Width: pc.Width, Ledger: fiscal.NewLedger(db), Log: plog}})
		links = append(links, link)
	}
	return printers, links
}

// receiptPrinters puts both kinds of printer drivers in one map for the
// print jobs, which need only device.ReceiptPrinter.
func receiptPrinters(fiscalPrinters map[string]*datecs.Device, receipt map[string]*escpos.Device) map[string]device.ReceiptPrinter {
	m := make(map[string]device.ReceiptPrinter, len(fiscalPrinters)+len(receipt))
	for id, p := range fiscalPrinters {
		m[id] = bgSalePrinter{p} // a fiscal printer can fiscalize a Bulgarian sale
	}
	for id, p := range receipt {
		m[id] = p
	}
	return m
}

// withConditions marks in /healthz's device states each receipt printer
// that is connected but cannot print: state "degraded" and its condition
// ("paper out", "cover open", "mechanism fault", "offline").
func withConditions(states map[string]any, devs map[string]*escpos.Device) map[string]any {
	for id, d := range devs {
		st, ok := states[id].(map[string]any)
		if !ok || st["state"] != "online" {
			continue
		}
		if c := d.Condition(); c != "" {
			st["state"], st["condition"] = "degraded", c
		}
	}
	return states
}

// receiptPrinterViews gives the API the receipt printers for
// GET /v1/devices and the fiscal-printer routes.
func receiptPrinterViews(ps map[string]*escpos.Device) map[string]api.ReceiptPrinter {
	m := make(map[string]api.ReceiptPrinter, len(ps))
	for id, p := range ps {
		m[id] = p
	}
	return m
}
