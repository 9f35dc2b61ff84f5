//go:build linux || darwin

package datecs_test

import (
	"context"
	"sync"
	"testing"

	"github.com/posgate/posgate/simulator/printer"
)

func init() { transports["pty"] = servePTY }

// servePTY serves sim on the master side of a new pty and returns the
// slave's path, which the driver opens with serial.Open as in production.
func servePTY(t *testing.T, sim *printer.Printer) string {
	t.Helper()
	pt, err := printer.OpenPTY()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := sim.Serve(ctx, pt); err != nil {
			t.Logf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return pt.Name()
}
