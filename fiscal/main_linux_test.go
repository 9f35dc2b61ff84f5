//go:build linux

package fiscal_test

import (
	"os"
	"testing"

	"github.com/posgate/posgate/internal/powerfs"
)

func TestMain(m *testing.M) {
	powerfs.ServeIfChild() // BenchmarkInvoiceSlowDisk's slow disk
	os.Exit(m.Run())
}
