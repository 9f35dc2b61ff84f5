package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/me"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/store"
)

// validateService checks the tax service keys (fiscal.service_url and
// the issuer's data the service needs).
func (f FiscalConfig) validateService() error {
	bad := func(key string, val any, format string, args ...any) error {
		return &ConfigError{Key: key, Value: val, Err: fmt.Errorf(format, args...)}
	}
	if f.ServiceTimeout.Duration <= 0 {
		return bad("fiscal.service_timeout", f.ServiceTimeout, "must be positive")
	}
	if f.MaxAttempts < 1 {
		return bad("fiscal.max_attempts", f.MaxAttempts, "must be at least 1")
	}
	if len(f.RetrySchedule) == 0 {
		return bad("fiscal.retry_schedule", "[]", "give at least one wait")
	}
	for _, d := range f.RetrySchedule {
		if d.Duration <= 0 {
			return bad("fiscal.retry_schedule", d, "every wait must be positive")
		}
	}
	if f.ReceiptFICWait.Duration < 0 || f.ReceiptFICWait.Duration > 30*time.Second {
		return bad("fiscal.receipt_fic_wait", f.ReceiptFICWait, "want 0s to 30s")
	}
	if f.ServiceURL == "" {
		return nil
	}
	if u, err := url.Parse(f.ServiceURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return bad("fiscal.service_url", strconv.Quote(f.ServiceURL), "want an https:// URL, e.g. "+me.TestURL)
	}
	if f.ServiceCAFile != "" {
		if _, err := os.Stat(f.ServiceCAFile); err != nil {
			return bad("fiscal.service_ca_file", strconv.Quote(f.ServiceCAFile), "%v", err)
		}
	}
	if !f.Enabled() {
		return bad("fiscal.service_url", strconv.Quote(f.ServiceURL), "registration needs tin, business_unit, tcr and software")
	}
	if err := f.issuer().Check(); err != nil {
		var ve *fiscal.ValidationError
		if errors.As(err, &ve) {
			return bad("fiscal."+ve.Field, "(see the key)", "%s", ve.Message)
		}
		return bad("fiscal", "", "%v", err)
	}
	return nil
}

func (f FiscalConfig) issuer() me.Issuer {
	return me.Issuer{TIN: f.TIN, Name: f.SellerName, Address: f.SellerAddress, Town: f.SellerTown,
		BusinessUnit: f.BusinessUnit, TCR: f.TCR, Software: f.Software, Operator: f.Operator,
		Maintainer: f.Maintainer, InVAT: f.IssuerInVAT}
}

// newRegistrations builds the tax service client and the registration
// worker (the caller runs it), or nil when fiscal.service_url is unset:
// posgate never dials a tax service the configuration did not name.
func newRegistrations(cfg Config, db *store.DB, certs *fiscal.Certificates, relay *outbox.Relay,
	log zerolog.Logger) (*fiscal.Registrations, error) {
	f := cfg.Fiscal
	if f.ServiceURL == "" || !f.Enabled() {
		log.Warn().Msg("fiscal.service_url not set: invoices are signed but not registered with the tax service")
		return nil, nil
	}
	client, err := me.NewClient(me.ClientOptions{URL: f.ServiceURL, CAFile: f.ServiceCAFile, Timeout: f.ServiceTimeout.Duration})
	if err != nil {
		return nil, fmt.Errorf("tax service client: %w", err)
	}
	cp, err := newProfile(f, profileDeps{})
	if err != nil {
		return nil, err
	}
	loc := cp.Location
	profile, err := me.New(me.Options{Issuer: f.issuer(), Client: client, Location: loc})
	if err != nil {
		return nil, fmt.Errorf("tax service profile: %w", err)
	}
	schedule := make([]time.Duration, len(f.RetrySchedule))
	for i, d := range f.RetrySchedule {
		schedule[i] = d.Duration
	}
	opts := fiscal.RegistrationsOptions{
		Registrar: profile, Certificates: certs, Schedule: schedule, MaxAttempts: f.MaxAttempts,
		Log: log.With().Str(logkey.Component, "registrations").Logger(),
	}
	if relay != nil {
		opts.Notify = relay.Notify
	}
	return fiscal.NewRegistrations(db, opts), nil
}

// taxServiceHealth is /healthz's tax_service member: the backlog and the
// oldest invoice without a FIC.
func taxServiceHealth(ctx context.Context, reg *fiscal.Registrations) any {
	b, err := reg.Backlog(ctx)
	if err != nil {
		return map[string]any{"status": "unknown"}
	}
	status := "ok"
	switch {
	case b.Dead > 0 || b.Errors > 0:
		status = "needs_attention"
	case b.Offline:
		status = "offline"
	}
	return map[string]any{"status": status, "backlog": b}
}

// registerRegistrationGauges puts the tax service backlog on /metrics.
func registerRegistrationGauges(set *metrics.Set, reg *fiscal.Registrations) {
	backlog := func(pick func(fiscal.Backlog) float64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			b, err := reg.Backlog(ctx)
			if err != nil {
				return -1
			}
			return pick(b)
		}
	}
	set.NewGauge(`posgate_fiscal_registrations{state="pending"}`, backlog(func(b fiscal.Backlog) float64 { return float64(b.Pending) }))
	set.NewGauge(`posgate_fiscal_registrations{state="error"}`, backlog(func(b fiscal.Backlog) float64 { return float64(b.Errors) }))
	set.NewGauge(`posgate_fiscal_registrations{state="dead"}`, backlog(func(b fiscal.Backlog) float64 { return float64(b.Dead) }))
	set.NewGauge("posgate_fiscal_oldest_without_fic_seconds", backlog(func(b fiscal.Backlog) float64 {
		if b.Oldest == nil {
			return 0
		}
		return time.Since(b.Oldest.IssuedAt).Seconds()
	}))
}
