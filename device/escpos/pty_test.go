//go:build linux || darwin

package escpos_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/simulator"
	simescpos "github.com/posgate/posgate/simulator/escpos"
)

func init() { transports["pty"] = servePTY }

// servePTY serves sim on a raw pty behind a link path, which the driver
// opens with serial.Open as it opens /dev/ttyUSB0 in production.
func servePTY(t *testing.T, sim *simescpos.Printer) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "ttyPOS")
	srv, err := simulator.ServePTY(context.Background(), sim.Handle,
		simulator.PTYOptions{Link: link, Log: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Path()
}
