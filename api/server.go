package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/posgate/posgate/apikey"
	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/idempotency"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// Deps are what the handlers need. Every field but the optional ones must
// be set; resources added later add their owner here.
type Deps struct {
	Log   zerolog.Logger
	Store *store.DB
	Keys  *apikey.Keys
	Idem  *idempotency.Store
	// Limiter slows down failed authentications (429 RATE_LIMITED).
	// Optional: NewHandler makes one with apikey's defaults.
	Limiter *apikey.Limiter
	// Version is reported by /healthz.
	Version string
	// Health adds component states (devices, certificates) to /healthz.
	// Optional.
	Health func(ctx context.Context) map[string]any
	// Metrics is the set /metrics serves; components may register gauges
	// on it. Optional: NewHandler makes one.
	Metrics *metrics.Set
	// Certificates and Invoices serve /v1/certificates and /v1/invoices.
	// Optional: without them those routes answer 503.
	Certificates *fiscal.Certificates
	Invoices     *fiscal.Invoices
	// Registrations serves the tax service routes (/v1/fiscal/…,
	// fiscalization retry). Optional: without it those routes answer 503.
	Registrations *fiscal.Registrations
	// PrintJobs serves reprints and requeues of print jobs. Optional:
	// without it those routes answer 503.
	PrintJobs *fiscal.PrintJobs
	// Webhooks and Outbox serve /v1/webhooks, /v1/deliveries and
	// /v1/events. Optional: without them those routes answer 503.
	Webhooks *webhook.Endpoints
	Outbox   *outbox.Relay
	// Printers are the fiscal printers by configured id, for reports and
	// cash operations.
	Printers map[string]device.Printer
	// PrinterOps, if set, runs reports and cash operations so that a
	// retried request never prints one twice (recorded before it is sent).
	PrinterOps *fiscal.PrinterOps
	// ReceiptPrinters are the receipt printers (ESC/POS) by configured
	// id: GET /v1/devices lists them, and fiscal-printer routes (the
	// duplicate) answer 409 NOT_FISCAL_PRINTER for them, not 404.
	ReceiptPrinters map[string]ReceiptPrinter
	// Traces are the devices' last frames by id (terminals keep them).
	Traces map[string]*device.Trace
	// Payments serves /v1/payments, /v1/terminals and the terminals of
	// /v1/devices. Optional: without it those routes answer 503.
	Payments *payment.Service
	// Pprof serves /debug/pprof/ to admin keys (config debug.pprof).
	Pprof bool
}

// NewHandler returns the API's root handler.
func NewHandler(d Deps) http.Handler {
	if d.Store == nil || d.Keys == nil || d.Idem == nil {
		panic("api: Store, Keys and Idem are required")
	}
	if d.Metrics == nil {
		d.Metrics = metrics.NewSet()
	}
	if d.Limiter == nil {
		d.Limiter = apikey.NewLimiter(apikey.LimiterOptions{})
	}
	mux := http.NewServeMux()
	addRoutes(mux, d)
	return withActivity(d.Store, withRequestLog(d.Log, d.Metrics, withRecover(d.Log, withCanonicalPaths(d, mux))))
}

// withActivity marks every request that may change something (all but
// GET and HEAD, which include long polls) as foreground work in the store
// while it runs (store.DB.Active), so the outbox relay slows its sends and
// leaves the CPU to the till (issue 17).
func withActivity(db *store.DB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			defer db.Active()()
		}
		next.ServeHTTP(w, r)
	})
}

// Server timeouts. The write timeout leaves room for the longest wait a
// route allows (a payment long-poll caps at 60 s).
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 75 * time.Second
	IdleTimeout       = 120 * time.Second
	ShutdownTimeout   = 10 * time.Second
)

// Serve serves h on ln until ctx is cancelled, then shuts down: requests
// in flight get ShutdownTimeout to finish. It returns nil after a clean
// shutdown.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log zerolog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("http shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	return nil
}
