package datecs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
	"github.com/rs/zerolog"
)

// TestDeviceSurvivesLostLine runs the driver behind a device.Link: the line
// dies right after the printer closed a receipt, the link reconnects, and
// the retried document is found printed instead of printed again.
func TestDeviceSurvivesLostLine(t *testing.T) {
	eachTransport(t, printer.Options{}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		log := zerolog.New(zerolog.NewTestWriter(t))
		link := device.NewLink(device.LinkOptions{ID: "p1", Spec: r.spec, Port: datecs.PortOptions(), Log: log,
			BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
		runCtx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); link.Run(runCtx) }()
		defer wg.Wait()
		defer stop()

		d := datecs.NewDevice(link, r.opts)
		// retry calls fn until the link is up and fn gets through.
		retry := func(fn func() error) error {
			for {
				err := fn()
				if !errors.Is(err, device.ErrOffline) || ctx.Err() != nil {
					return err
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		if err := retry(func() error { _, err := d.PrintReceipt(ctx, sampleReceipt("d-1")); return err }); err != nil {
			t.Fatal(err)
		}
		if d.Identity().Serial != "DT000600" {
			t.Fatalf("Identity=%+v", d.Identity())
		}

		r.sim.DropLineAfter(0x38)
		doc := sampleReceipt("d-2")
		if _, err := d.PrintReceipt(ctx, doc); err == nil {
			t.Fatal("PrintReceipt succeeded on a dropped line")
		}
		r.sim.RestoreLine()
		var res device.ReceiptResult
		err := retry(func() error {
			var err error
			res, err = d.PrintReceipt(ctx, doc)
			if errors.Is(err, device.ErrDisconnected) {
				return device.ErrOffline // the first job may still meet the old line
			}
			return err
		})
		if err != nil {
			t.Fatalf("PrintReceipt after reconnect: %v", err)
		}
		if !res.Recovered || res.Number != 2 {
			t.Fatalf("result %+v, want receipt 2 recovered", res)
		}
		if n := len(r.sim.Receipts()); n != 2 {
			t.Fatalf("%d receipts, want 2", n)
		}
		if x, err := d.XReport(ctx); err != nil || x.Totals != r.sim.Counters().Totals {
			t.Fatalf("XReport=%+v, %v", x, err)
		}
	})
}
