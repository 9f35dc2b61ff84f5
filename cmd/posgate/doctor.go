package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device/nexo"
	"github.com/posgate/posgate/doctor"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// errChecksFailed makes `posgate doctor` exit non-zero.
var errChecksFailed = errors.New("doctor: some checks failed")

// clockFloor is the earliest plausible time: a box whose clock is before
// it booted without its RTC.
var clockFloor = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// runDoctor checks the installation and prints one line per check.
//
// Devices: the daemon owns the ports. If a daemon answers /healthz on
// the configured listen address, doctor reports the state its links see;
// otherwise it opens each port itself and sends the protocol's status
// command (ZVT status enquiry 05 01, Datecs status 4Ah, ESC/POS real-time
// status DLE EOT 1…4, nexo Diagnosis).
func runDoctor(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs, getenv)
	asJSON := fs.Bool("json", false, "print the results as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var checks []doctor.Check
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		checks = append(checks, doctor.Check{Name: "config", Run: func(context.Context) (doctor.Status, string) { return doctor.Fail, err.Error() }})
		return finishDoctor(ctx, checks, stdout, *asJSON)
	}
	src := "defaults"
	if *cfgPath != "" {
		src = *cfgPath
	}
	checks = append(checks, doctor.Check{Name: "config", Run: func(context.Context) (doctor.Status, string) { return doctor.OK, src + " valid" }})
	checks = append(checks, doctor.Store(cfg.DBPath()), doctor.MasterKey(cfg.MasterKeyPath()))
	checks = append(checks, doctor.Clock(time.Now, clockFloor))

	client := &http.Client{Timeout: doctor.Timeout}
	if devs, ok := doctor.DaemonDevices(ctx, client, "http://"+cfg.Listen); ok {
		checks = append(checks, devs...)
	} else {
		devs, closeDevs := directDeviceChecks(ctx, cfg)
		defer closeDevs()
		checks = append(checks, devs...)
	}

	// Certificates and webhook endpoints live in the store; they are read
	// only when it opens and the key is readable.
	if master, err := loadMaster(cfg.MasterKeyPath()); err == nil {
		if _, serr := os.Stat(cfg.DBPath()); serr == nil {
			if db, err := store.Open(ctx, cfg.DBPath(), store.Options{}); err == nil {
				defer db.Close()
				certs := fiscal.NewCertificates(db, fiscal.CertificatesOptions{Master: master, Log: zerolog.Nop()})
				if list, err := certs.List(ctx); err == nil {
					for _, c := range list {
						if c.Status == "deactivated" {
							continue
						}
						checks = append(checks, doctor.Certificate(c.ID, c.Label, c.NotAfter, time.Now))
					}
				}
				sender := webhook.NewSender(webhook.SenderOptions{AllowHTTP: cfg.Webhooks.AllowHTTP, AllowPrivate: cfg.Webhooks.AllowPrivate})
				if eps, err := webhook.New(db, master, sender, webhook.Options{}).List(ctx); err == nil {
					for _, ep := range eps {
						checks = append(checks, doctor.Webhook(ep.ID, ep.URL, sender.Dialer(), nil))
					}
				}
			}
		}
	}
	if u := cfg.Fiscal.ServiceURL; u != "" {
		tc, err := taxServiceClient(cfg.Fiscal.ServiceCAFile)
		if err != nil {
			checks = append(checks, doctor.Check{Name: "tax service", Run: func(context.Context) (doctor.Status, string) {
				return doctor.Fail, err.Error()
			}})
		} else {
			checks = append(checks, doctor.TaxService(tc, u, time.Now))
		}
	}
	return finishDoctor(ctx, checks, stdout, *asJSON)
}

func finishDoctor(ctx context.Context, checks []doctor.Check, stdout io.Writer, asJSON bool) error {
	rs := doctor.Run(ctx, checks)
	if err := doctor.Print(stdout, rs, asJSON); err != nil {
		return err
	}
	if doctor.Failed(rs) {
		return errChecksFailed
	}
	return nil
}

// taxServiceClient trusts what the daemon's tax-service client trusts:
// the system roots plus fiscal.service_ca_file.
func taxServiceClient(caFile string) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("fiscal.service_ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("fiscal.service_ca_file %s: no PEM certificate", caFile)
		}
	}
	return &http.Client{Timeout: doctor.Timeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}}, nil
}

// directDeviceChecks opens each configured device (no daemon holds the
// ports) and asks its status.
func directDeviceChecks(ctx context.Context, cfg Config) (checks []doctor.Check, closeAll func()) {
	closeAll = func() {}
	log := zerolog.Nop()
	terminals, err := openTerminals(cfg, log, nil)
	if err != nil {
		return []doctor.Check{{Name: "devices", Run: func(context.Context) (doctor.Status, string) { return doctor.Fail, err.Error() }}}, closeAll
	}
	for _, tc := range cfg.Terminals {
		t := terminals[tc.ID]
		if t == nil {
			continue // nexo: below
		}
		checks = append(checks, doctor.Device(tc.ID, func(ctx context.Context) (string, error) {
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); _ = t.Run(rctx) }()
			defer func() { cancel(); <-done }()
			st, err := t.Status(ctx)
			if err != nil {
				return "", fmt.Errorf("ZVT status enquiry on %s: %w", tc.Port, err)
			}
			return fmt.Sprintf("ZVT status enquiry on %s answered (%+v)", tc.Port, st), nil
		}))
	}
	if len(cfg.Printers) > 0 {
		db, err := store.Open(ctx, cfg.DBPath(), store.Options{})
		if err != nil {
			return append(checks, doctor.Check{Name: "printers", Run: func(context.Context) (doctor.Status, string) { return doctor.Fail, err.Error() }}), closeAll
		}
		closeAll = func() { db.Close() }
		printers, links := openPrinters(cfg, db, log, nil)
		i := 0
		for _, pc := range cfg.Printers {
			if pc.Protocol != "datecs-x" {
				continue
			}
			p, l := printers[pc.ID], links[i]
			i++
			checks = append(checks, doctor.Device(pc.ID, func(ctx context.Context) (string, error) {
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); _ = l.Run(rctx) }()
				defer func() { cancel(); <-done }()
				st, err := p.Status(ctx)
				if err != nil {
					return "", fmt.Errorf("Datecs status on %s: %w", pc.Port, err)
				}
				if st.PaperOut || st.CoverOpen || st.MechanismFault || st.FiscalMemoryError {
					return "", fmt.Errorf("Datecs status on %s: fault %+v", pc.Port, st)
				}
				return "Datecs status on " + pc.Port + " ok", nil
			}))
		}
		checks = append(checks, receiptPrinterChecks(cfg, db, log)...)
	}
	return append(checks, nexoChecks(cfg, log)...), closeAll
}

// receiptPrinterChecks asks each ESC/POS printer its real-time status
// (DLE EOT 1…4): paper out, cover open and a mechanism fault fail with the
// condition named, paper near end warns.
func receiptPrinterChecks(cfg Config, db *store.DB, log zerolog.Logger) []doctor.Check {
	devs, links := openReceiptPrinters(cfg, db, log, nil)
	var checks []doctor.Check
	i := 0
	for _, pc := range cfg.Printers {
		if pc.Protocol != "escpos" {
			continue
		}
		d, l := devs[pc.ID], links[i]
		i++
		checks = append(checks, doctor.Device(pc.ID, func(ctx context.Context) (string, error) {
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); _ = l.Run(rctx) }()
			defer func() { cancel(); <-done }()
			st, err := d.Status(ctx)
			if err != nil {
				return "", fmt.Errorf("ESC/POS real-time status on %s: %w", pc.Port, err)
			}
			ds := st.Device()
			var cond []string
			if ds.PaperOut {
				cond = append(cond, "paper out")
			}
			if ds.CoverOpen {
				cond = append(cond, "cover open")
			}
			if ds.MechanismFault {
				cond = append(cond, "mechanism fault")
			}
			if len(cond) == 0 && st.Offline {
				cond = append(cond, "offline")
			}
			if len(cond) > 0 {
				return "", fmt.Errorf("ESC/POS real-time status on %s: %s", pc.Port, strings.Join(cond, ", "))
			}
			if ds.PaperLow {
				return "", doctor.Warning("ESC/POS real-time status on " + pc.Port + ": paper near end")
			}
			return "ESC/POS real-time status on " + pc.Port + " ok", nil
		}))
	}
	return checks
}

// nexoChecks sends each nexo terminal a Diagnosis request; GlobalStatus
// OK passes. The passphrase is opened with the master key when sealed.
func nexoChecks(cfg Config, log zerolog.Logger) []doctor.Check {
	var ids []string
	for _, tc := range cfg.Terminals {
		if tc.Protocol == "nexo" {
			ids = append(ids, tc.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	mk, err := loadMaster(cfg.MasterKeyPath())
	var clients map[string]*nexo.Client
	if err == nil {
		clients, err = openNexoTerminals(cfg, mk, log)
	}
	var checks []doctor.Check
	for _, tc := range cfg.Terminals {
		if tc.Protocol != "nexo" {
			continue
		}
		c := clients[tc.ID]
		checks = append(checks, doctor.Device(tc.ID, func(ctx context.Context) (string, error) {
			if c == nil {
				return "", fmt.Errorf("nexo terminal %s: %w", tc.ID, err)
			}
			st, err := c.Status(ctx)
			if err != nil {
				return "", fmt.Errorf("nexo Diagnosis on %s: %w", tc.Port, err)
			}
			if st.Code != 0 {
				return "", fmt.Errorf("nexo Diagnosis on %s: %s", tc.Port, st.Text)
			}
			return "nexo Diagnosis on " + tc.Port + ": " + st.Text, nil
		}))
	}
	return checks
}

// loadMaster reads the master key without creating one.
func loadMaster(path string) (*masterkey.Key, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	return masterkey.New(raw)
}
