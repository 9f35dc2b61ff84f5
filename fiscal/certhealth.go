package fiscal

import (
	"context"
	"time"
)

// Health reports the certificates for /healthz under "certificates":
// how many can sign, and which have expired or expire within
// ExpiryWarning. A box whose every certificate has expired cannot issue
// invoices; "status" then says "error", and "warning" when one expires soon.
func (c *Certificates) Health(ctx context.Context) map[string]any {
	certs, err := c.List(ctx)
	if err != nil {
		return map[string]any{"certificates": map[string]any{"status": "error", "error": "cannot read certificates"}}
	}
	now := c.opts.Now()
	type brief struct {
		ID       string    `json:"id"`
		Label    string    `json:"label"`
		NotAfter time.Time `json:"not_after"`
	}
	var (
		active   int
		expired  = []brief{}
		expiring = []brief{}
	)
	for _, cert := range certs {
		b := brief{ID: cert.ID, Label: cert.Label, NotAfter: cert.NotAfter}
		switch {
		case cert.Status == CertExpired:
			expired = append(expired, b)
		case cert.Status != CertActive:
		case cert.NotAfter.Sub(now) < c.opts.ExpiryWarning:
			active++
			expiring = append(expiring, b)
		default:
			active++
		}
	}
	status := "ok"
	switch {
	case len(certs) > 0 && active == 0:
		status = "error"
	case len(expired) > 0 || len(expiring) > 0:
		status = "warning"
	}
	return map[string]any{"certificates": map[string]any{
		"status":        status,
		"active":        active,
		"expired":       expired,
		"expiring_soon": expiring,
	}}
}

// CheckInterval is how often Run logs certificate expiry.
const CheckInterval = 12 * time.Hour

// Run logs expired and soon-expiring certificates at start and every
// CheckInterval until ctx ends; then it returns nil. An expired
// certificate is an Error (invoices it was bound to are refused), one
// expiring soon a Warn.
func (c *Certificates) Run(ctx context.Context) error {
	t := time.NewTicker(CheckInterval)
	defer t.Stop()
	for {
		c.logExpiry(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Certificates) logExpiry(ctx context.Context) {
	certs, err := c.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.opts.Log.Warn().Err(err).Msg("certificate expiry check failed")
		}
		return
	}
	now := c.opts.Now()
	for _, cert := range certs {
		switch {
		case cert.Status == CertExpired:
			c.opts.Log.Error().Str("certificate_id", cert.ID).Str("label", cert.Label).
				Time("not_after", cert.NotAfter).Msg("certificate expired; invoices bound to it are refused")
		case cert.Status == CertActive && cert.NotAfter.Sub(now) < c.opts.ExpiryWarning:
			c.opts.Log.Warn().Str("certificate_id", cert.ID).Str("label", cert.Label).
				Time("not_after", cert.NotAfter).Dur("expires_in", cert.NotAfter.Sub(now)).Msg("certificate expires soon")
		}
	}
}
