package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/fiscal"
)

// runFiscal is `posgate fiscal register-tcr`: it queues RegisterTCR in
// the store, where the running daemon's registration worker (the queue's
// one owner) sends it, and waits for the TCR code.
//
//	posgate fiscal register-tcr --internal-id ID --certificate CERT_ID [--valid-from DATE] [--type regular|vending] [--wait 30s] [--json]
func runFiscal(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "register-tcr" {
		return errors.New("fiscal: want register-tcr")
	}
	fs := flag.NewFlagSet("fiscal register-tcr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs, getenv)
	internalID := fs.String("internal-id", "", "the shop's own id of this device (TCRIntID)")
	certID := fs.String("certificate", "", "certificate `id` that signs the request (posgate certs list)")
	validFrom := fs.String("valid-from", "", "first day the code is valid, YYYY-MM-DD (optional)")
	typ := fs.String("type", "regular", "regular or vending")
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the TCR code (the daemon sends it)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	if cfg.Fiscal.ServiceURL == "" {
		return &ConfigError{Key: "fiscal.service_url", Value: `""`, Err: errors.New("set the tax service first (docs/fiscal.md)")}
	}
	if *certID == "" {
		return errors.New("fiscal register-tcr: --certificate is required")
	}
	db, mk, err := openStoreAndKey(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	certs := fiscal.NewCertificates(db, fiscal.CertificatesOptions{Master: mk})
	reg, err := newRegistrations(cfg, db, certs, nil, zerolog.Nop())
	if err != nil {
		return err
	}
	id, err := reg.RegisterTCR(ctx, fiscal.TCRRegistration{InternalID: *internalID, ValidFrom: *validFrom, Type: *typ}, *certID)
	if err != nil {
		return fmt.Errorf("fiscal register-tcr: %w", err)
	}
	deadline := time.Now().Add(*wait)
	var st fiscal.FiscalizationStatus
	for {
		if st, err = reg.Status(ctx, id); err != nil {
			return err
		}
		if st.Status != fiscal.RegPending || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"id": id, "kind": fiscal.KindTCR, "registration": st})
	}
	switch st.Status {
	case fiscal.RegCompleted:
		fmt.Fprintf(stdout, "TCR code %s (registration %s): set fiscal.tcr = %q\n", st.FIC, id, st.FIC)
	case fiscal.RegPending:
		fmt.Fprintf(stdout, "registration %s queued; posgate serve sends it (GET /v1/fiscal/registrations/%s)\n", id, id)
	default:
		fmt.Fprintf(stdout, "registration %s %s: %s %s\n", id, st.Status, st.Code, st.LastError)
	}
	return nil
}
