package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/simulator"
	simescpos "github.com/posgate/posgate/simulator/escpos"
	"github.com/posgate/posgate/simulator/taxservice"
)

// startProfileSimulators starts, for serve --simulate, the printer p1
// the country profile prints on and, for a profile that registers with a
// tax service, the tax service: the whole pipeline on this machine.
//
// A profile that registers (me) gets the simulated tax service on
// loopback HTTPS (its CA written to the data directory and trusted) and
// an ESC/POS receipt printer, when fiscal.service_url is unset and the
// seller's data the service needs is configured (configs/dev.toml).
// Otherwise p1 is a simulated Datecs fiscal printer, as before profiles.
// The caller closes what is returned.
func startProfileSimulators(ctx context.Context, cfg *Config, out io.Writer, log zerolog.Logger) ([]io.Closer, string, error) {
	cp, err := newProfile(cfg.Fiscal, profileDeps{})
	if err != nil {
		return nil, "", err
	}
	req := cp.Requirements()
	if !req.Registration || req.Printer == fiscal.PrinterFiscal || cfg.Fiscal.ServiceURL != "" || !cfg.Fiscal.Enabled() ||
		cfg.Fiscal.issuer().Check() != nil {
		ppty, err := startPrinterSimulator(ctx, cfg, out, log)
		if err != nil {
			return nil, "", err
		}
		return []io.Closer{ppty}, "printer p1 (Datecs) on " + ppty.Path(), nil
	}
	tax, err := taxservice.Start(taxservice.Options{})
	if err != nil {
		return nil, "", fmt.Errorf("start simulated tax service: %w", err)
	}
	ca := filepath.Join(cfg.DataDir, "taxservice-ca.pem")
	if err := os.WriteFile(ca, tax.CAPEM(), 0o600); err != nil {
		tax.Close()
		return nil, "", fmt.Errorf("write simulated tax service CA: %w", err)
	}
	cfg.Fiscal.ServiceURL, cfg.Fiscal.ServiceCAFile = tax.URL(), ca
	if cfg.Fiscal.ReceiptFICWait.Duration == 0 {
		cfg.Fiscal.ReceiptFICWait.Duration = 3 * time.Second // the receipt prints the FIC
	}
	if err := cfg.Fiscal.validateService(); err != nil {
		tax.Close()
		return nil, "", err
	}
	var mu sync.Mutex
	sim := simescpos.New(simescpos.Options{
		Log: log.With().Str(logkey.Component, "sim-escpos").Logger(),
		OnReceipt: func(r simescpos.Receipt) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(out, "\n--- simulated printer p1 ---\n%s\n", r.Text())
			if qr := r.QRPayloads(); len(qr) > 0 {
				fmt.Fprintf(out, "[QR] %s\n", strings.Join(qr, " | "))
			}
		},
	})
	ppty, err := simulator.ServePTY(ctx, sim.Handle, simulator.PTYOptions{Log: log})
	if err != nil {
		tax.Close()
		return nil, "", fmt.Errorf("start simulated receipt printer: %w", err)
	}
	setDevice(&cfg.Printers, PrinterConfig{ID: "p1", Protocol: "escpos", Port: ppty.Path(), Baud: 115200, Width: 42, CodePage: "cp852"})
	return []io.Closer{ppty, closerFunc(tax.Close)}, fmt.Sprintf("receipt printer p1 (ESC/POS) on %s, tax service %s", ppty.Path(), tax.URL()), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
