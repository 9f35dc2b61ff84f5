package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/payment"
	"github.com/posgate/posgate/store"
)

// newInvoicing builds the invoice service with its signing scheme and,
// when a printer is configured, the print-job runner on the first printer
// (the caller runs it). Without the fiscal identifiers invoices are off
// and both are nil.
func newInvoicing(cfg Config, db *store.DB, certs *fiscal.Certificates, printers map[string]device.ReceiptPrinter,
	relay *outbox.Relay, reg *fiscal.Registrations, log zerolog.Logger) (*fiscal.Invoices, *fiscal.PrintJobs, error) {
	var (
		invoices *fiscal.Invoices
		jobs     *fiscal.PrintJobs
		deps     profileDeps
	)
	if len(cfg.Printers) > 0 {
		pc := cfg.Printers[0]
		if pc.Protocol == "escpos" {
			deps.Width = pc.Width // lines as wide as the receipt printer's paper
		}
		if ip, ok := printers[pc.ID].(interface {
			Info(context.Context) (device.PrinterInfo, error)
		}); ok {
			deps.DeviceSerial = func(ctx context.Context) (string, error) {
				info, err := ip.Info(ctx)
				if err != nil {
					return "", fmt.Errorf("%w: %w", fiscal.ErrPrinterUnavailable, err)
				}
				return info.Serial, nil
			}
		}
	}
	cp, err := newProfile(cfg.Fiscal, deps)
	if err != nil {
		return nil, nil, err
	}
	if len(cfg.Printers) > 0 {
		pc := cfg.Printers[0]
		ro := fiscal.ReceiptOptions{Operator: pc.Operator, Password: pc.Password, VATGroups: cp.VATGroups, Width: deps.Width}
		jobs = fiscal.NewPrintJobs(db, fiscal.PrintJobsOptions{
			Printer:   printers[pc.ID],
			PrinterID: pc.ID,
			Profile:   cp.Profile,
			Log:       log.With().Str(logkey.Component, "printjobs").Str(logkey.DeviceID, pc.ID).Logger(),
			Receipt:   ro,
			NotReady: func(err error) bool {
				return fiscal.PrinterNotReady(err) || errors.Is(err, datecs.ErrNoAnswer) || errors.Is(err, fiscal.ErrPrinterUnavailable)
			},
			AwaitFIC: awaitFIC(reg, cfg.Fiscal.ReceiptFICWait.Duration),
		})
	}
	if cfg.Fiscal.Enabled() {
		opts := fiscal.InvoicesOptions{
			Profile:      cp.Profile,
			Certificates: certs,
			TIN:          cfg.Fiscal.TIN,
			BusinessUnit: cfg.Fiscal.BusinessUnit,
			Device:       cfg.Fiscal.TCR,
			Software:     cfg.Fiscal.Software,
			Currency:     cfg.Fiscal.Currency,
			Location:     cp.Location, // invoice numbers restart each calendar year in the country's zone
			VATGroups:    cp.VATGroups,
			Notify:       relay.Notify,
			Payments:     linkedPayment,
		}
		if jobs != nil {
			// A fiscal printer's programmed VAT groups decide the rates it
			// accepts; a receipt printer has none, so the country's table does.
			opts.PrinterID = cfg.Printers[0].ID
			if cfg.Printers[0].Protocol != "escpos" {
				opts.PrinterRates = fiscal.NewPrinterRates(db)
			}
			opts.Notify = func() { jobs.Wake(); relay.Notify() }
		}
		if reg != nil {
			// The registration job commits with the invoice (fiscal/me).
			opts.RegisterTx, opts.Registered = reg.EnqueueInvoiceTx, reg.Wake
		}
		invoices = fiscal.NewInvoices(db, opts)
		log.Info().Str("country", cp.Name()).Bool("signed", cp.Scheme() != nil).Msg("fiscal profile")
	} else {
		log.Warn().Msg("fiscal not configured (fiscal.tin, business_unit, tcr, software): invoices are off")
	}
	return invoices, jobs, nil
}

// awaitFIC lets a receipt wait briefly for its FIC (fiscal.receipt_fic_wait);
// nil without registration.
func awaitFIC(reg *fiscal.Registrations, wait time.Duration) func(context.Context, string) string {
	if reg == nil || wait <= 0 {
		return nil
	}
	return func(ctx context.Context, id string) string { return reg.AwaitFIC(ctx, id, wait) }
}

// linkedPayment is fiscal's PaymentReader on payment's table: an
// invoice's card payment must be a real payment (issue 11, part 3).
func linkedPayment(ctx context.Context, tx *sql.Tx, id string) (fiscal.LinkedPayment, error) {
	p, err := payment.ReadTx(ctx, tx, id)
	if errors.Is(err, payment.ErrNotFound) {
		return fiscal.LinkedPayment{}, fiscal.ErrPaymentNotFound
	}
	if err != nil {
		return fiscal.LinkedPayment{}, err
	}
	return fiscal.LinkedPayment{ID: p.ID, Type: string(p.Type), Status: string(p.Status), Amount: p.Amount,
		Currency: p.Currency, Reversed: p.Reversal != nil}, nil
}
