//go:build linux || darwin

package datecs_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/printer"
	"github.com/rs/zerolog"
)

func init() { transports["pty"] = servePTY }

// servePTY serves sim on a raw pty behind a stable link (a dropped line
// hangs the pty up and puts a new one behind the link) and returns the
// link, which the driver opens with serial.Open as in production.
func servePTY(t *testing.T, sim *printer.Printer) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "ttyFP")
	srv, err := simulator.ServePTY(context.Background(), sim.Handle,
		simulator.PTYOptions{Link: link, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Path()
}
