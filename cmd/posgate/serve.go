package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/apikey"
	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/idempotency"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/observe"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// runServe is the daemon. Read it top to bottom as the wiring diagram:
// every component is built and connected here, one step each.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs, getenv)
	dev := fs.Bool("dev", false, "development: console logs, and an admin key printed for an empty store")
	simulate := fs.Bool("simulate", false, "start simulated terminal t1 and printer p1 on pseudo-terminals")
	printCfg := fs.Bool("print-config", false, "print the effective configuration (secrets masked) and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}

	// 1. Configuration: file, then POSGATE_* env, then validation.
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	if *printCfg {
		return printConfig(stdout, cfg)
	}

	// 2. One root logger; components derive children.
	log := newLogger(stderr, cfg.Log.Level, *dev)
	log.Info().Str("version", version).Str("data_dir", cfg.DataDir).Msg("posgate starting")

	// 3. The store: one SQLite file, migrated, WAL + synchronous=FULL. The
	// data directory's lock says a daemon serves it: a second daemon on the
	// same store, or a restore over it, is refused.
	dirLock, err := store.LockDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("open store: %w (is another posgate serving %s?)", err, cfg.DataDir)
	}
	defer dirLock.Unlock()
	db, err := store.Open(ctx, cfg.DBPath(), store.Options{})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error().Err(err).Msg("close store")
		}
		log.Info().Msg("store closed")
	}()

	// 4. The master key seals every secret kept at rest.
	master, err := masterkey.LoadOrCreate(cfg.MasterKeyPath())
	if err != nil {
		return err
	}

	// 5. API keys and idempotency records.
	keys := apikey.New(db, master)
	idem := idempotency.New(db, master)

	// 6. With --simulate, in-process simulators on ptys become terminal t1
	// and printer p1, so posgate does its whole job with no hardware.
	if *simulate {
		tpty, err := startTerminalSimulator(ctx, &cfg, stdout, log)
		if err != nil {
			return err
		}
		defer tpty.Close()
		// The printer (and tax service) the country profile needs.
		closers, printer, err := startProfileSimulators(ctx, &cfg, stdout, log)
		if err != nil {
			return err
		}
		for _, c := range closers {
			defer c.Close()
		}
		fmt.Fprintf(stdout, "simulated terminal t1 on %s, %s\n", tpty.Path(), printer)
	}

	// 7. Webhooks: endpoints with sealed secrets, a sender whose dialer
	// refuses private targets at dial time, and the relay that drains the
	// outbox every producer writes in its own transaction.
	sender := webhook.NewSender(webhook.SenderOptions{
		AllowHTTP:    cfg.Webhooks.AllowHTTP,
		AllowPrivate: cfg.Webhooks.AllowPrivate,
		Timeout:      cfg.Webhooks.Timeout.Duration,
	})
	endpoints := webhook.New(db, master, sender, webhook.Options{StoreID: cfg.StoreID})
	// Custom header values written before they were sealed (migration
	// 0005) are sealed now, before anything is delivered.
	if n, err := endpoints.SealStoredHeaders(ctx); err != nil {
		return fmt.Errorf("seal stored webhook headers: %w", err)
	} else if n > 0 {
		log.Info().Int("endpoints", n).Msg("sealed stored webhook custom headers")
	}
	disableAfter := cfg.Webhooks.DisableAfter.Duration
	if disableAfter == 0 {
		disableAfter = -1 // "0s": the breaker is off
	}
	relay := outbox.NewRelay(db, endpoints, log, outbox.Options{
		Schedule:     durations(cfg.Webhooks.RetrySchedule),
		MaxAttempts:  cfg.Webhooks.MaxAttempts,
		DisableAfter: disableAfter,
	})

	// 8. Devices: one Link per port owns it and reconnects after an unplug;
	// their state changes become device.* events.
	notifier := &device.Notifier{}
	devEvents := newDeviceEvents(relay, log.With().Str(logkey.Component, "devices").Logger(), notifier)
	printers, links := openPrinters(cfg, db, log, notifier)
	receiptDevs, receiptLinks := openReceiptPrinters(cfg, db, log, notifier)
	links = append(links, receiptLinks...)
	terminals, err := openTerminals(cfg, log, notifier)
	if err != nil {
		return err
	}
	nexoTerminals, err := openNexoTerminals(cfg, master, log) // nexo over TLS: no Link, Diagnosis is the health check
	if err != nil {
		return err
	}
	nexoEvents, err := openNexoListeners(cfg, nexoTerminals, log)
	if err != nil {
		return err
	}

	// 9. Payments: one session owner per terminal. Its Run first
	// reconciles any payment a crash left pending or in_progress (Repeat
	// Receipt) before that terminal takes new work.
	var payments *payment.Service
	if len(terminals)+len(nexoTerminals) > 0 {
		payments = payment.New(db, payment.Options{
			Terminals: append(paymentTerminals(cfg, terminals), nexoPaymentTerminals(cfg, nexoTerminals)...),
			Timeout:   cfg.Payments.Timeout.Duration,
			Notify:    relay.Notify,
			Log:       log.With().Str(logkey.Component, "payments").Logger(),
		})
	} else {
		log.Warn().Msg("no terminals configured: payments are off")
	}

	// 10. Fiscal: certificates (keys sealed), the signing scheme, invoices,
	// and a print job per invoice on the first printer.
	certs := fiscal.NewCertificates(db, fiscal.CertificatesOptions{
		Master: master,
		Log:    log.With().Str(logkey.Component, "certificates").Logger(),
	})
	registrations, err := newRegistrations(cfg, db, certs, relay, log)
	if err != nil {
		return err
	}
	invoices, jobs, err := newInvoicing(cfg, db, certs, receiptPrinters(printers, receiptDevs), relay, registrations, log)
	if err != nil {
		return err
	}

	// 11. Bind before serving, so a port clash fails here, not later; then
	// the API over everything above, with its health and metrics.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if err := checkBound(ln, cfg, log); err != nil {
		ln.Close()
		return err
	}
	if *dev { // after the bind: the printed curl lines name the bound address
		devCfg := cfg
		devCfg.Listen = ln.Addr().String()
		if err := bootstrapDev(ctx, devCfg, keys, certs, stdout); err != nil {
			ln.Close()
			return err
		}
	}
	set := metrics.NewSet()
	allLinks := append([]*device.Link(nil), links...)
	for _, c := range terminals {
		allLinks = append(allLinks, c.Link())
	}
	registerGauges(set, allLinks, relay)
	if registrations != nil {
		registerRegistrationGauges(set, registrations)
	}
	tailer, err := observe.NewTailer(ctx, db.Read, log.With().Str(logkey.Component, "metrics").Logger(), 0)
	if err != nil {
		ln.Close()
		return err
	}
	handler := api.NewHandler(api.Deps{
		Metrics: set,
		Log:     log.With().Str(logkey.Component, "api").Logger(),
		Store:   db,
		Keys:    keys,
		Idem:    idem,
		Version: version,
		Health: func(ctx context.Context) map[string]any {
			h := certs.Health(ctx)
			h["devices"] = nexoStates(withConditions(deviceStates(allLinks), receiptDevs), nexoTerminals)
			terminalHealth(h["devices"].(map[string]any), terminals)
			if registrations != nil {
				h["tax_service"] = taxServiceHealth(ctx, registrations)
			}
			return h
		},
		Certificates:    certs,
		Invoices:        invoices,
		Registrations:   registrations,
		PrintJobs:       jobs,
		Webhooks:        endpoints,
		Outbox:          relay,
		Printers:        printerMap(printers),
		PrinterOps:      fiscal.NewPrinterOps(db),
		ReceiptPrinters: receiptPrinterViews(receiptDevs),
		Payments:        payments,
		Traces:          traces(terminals),
		Pprof:           cfg.Debug.Pprof,
	})
	fmt.Fprintf(stdout, "posgate listening on http://%s\n", ln.Addr())
	log.Info().Str("addr", ln.Addr().String()).Msg("http listening")

	// 12. Run every long-lived component; the first failure stops the rest.
	g, gctx := errgroup.WithContext(ctx)
	for _, l := range links {
		g.Go(func() error { return l.Run(gctx) })
	}
	for _, t := range terminals {
		g.Go(func() error { return t.Run(gctx) })
	}
	for _, d := range receiptDevs {
		g.Go(func() error { return d.Run(gctx) })
	}
	for _, t := range nexoTerminals {
		g.Go(func() error { t.Run(gctx); return nil })
	}
	for _, l := range nexoEvents {
		g.Go(func() error { return l.Run(gctx) })
	}
	if jobs != nil {
		g.Go(func() error { return jobs.Run(gctx) })
	}
	if registrations != nil {
		g.Go(func() error { return registrations.Run(gctx) })
	}
	if payments != nil {
		g.Go(func() error { return payments.Run(gctx) })
	}
	g.Go(func() error { return devEvents.Run(gctx) })
	g.Go(func() error { return relay.Run(gctx) })
	g.Go(func() error { return tailer.Run(gctx) })
	g.Go(func() error { return observe.BacklogWatch(gctx, log, pendingDeliveries(relay), 1000, 10*time.Second) })
	g.Go(func() error { return certs.Run(gctx) })
	g.Go(func() error { return api.Serve(gctx, ln, handler, log) })
	err = g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info().Msg("posgate stopped")
	return nil
}

// printerMap widens the drivers to the interface the API takes.
func printerMap(ps map[string]*datecs.Device) map[string]device.Printer {
	m := make(map[string]device.Printer, len(ps))
	for id, p := range ps {
		m[id] = p
	}
	return m
}

// durations unwraps configuration durations.
func durations(ds []Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Duration
	}
	return out
}

// newLogger builds the root logger: JSON to stderr, or a console format
// for a person with --dev.
func newLogger(w io.Writer, level string, dev bool) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	if dev {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
