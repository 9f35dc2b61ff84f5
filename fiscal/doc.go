// Package fiscal owns fiscal invoices: their validation and totals, the
// gapless number per business unit, device and year, signing through a
// pluggable Scheme with the certificate bound to the caller's API key,
// the taxpayer certificates themselves (private keys sealed under the
// master key), the persisted print jobs that put each invoice on the
// fiscal printer exactly once, and the QR code of the verification URL.
// It checks an invoice's card payments against the payments they settle
// (never claimed beyond their amount), accepts only the VAT rates the
// printer reported (PrinterRates), and runs X/Z reports and cash
// operations so that a retry never prints one twice (PrinterOps).
//
// It also keeps the registrations with a tax service (Registrations):
// a durable job per invoice, committed with it, worked in order by one
// worker with retries, offline waiting, dead letter and deadline
// warnings; the country's client plugs in as a Registrar (fiscal/me).
//
// It owns the certificates, invoices, invoice_counters, print_jobs,
// fiscal_registrations, fiscal_exchanges, invoice_card_payments, printer_vat_rates and printer_ops tables. It does not decode HTTP (package api), talk to a printer's
// wire protocol (device/datecs), deliver events (outbox) or read
// configuration (cmd/posgate): those are given to its constructors.
// Signing schemes live in sub-packages (fiscal/iic).
package fiscal
