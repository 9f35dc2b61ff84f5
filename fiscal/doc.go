// Package fiscal owns fiscal invoices: their validation and totals, the
// gapless number per business unit, device and year, signing through a
// pluggable Scheme with the certificate bound to the caller's API key,
// the taxpayer certificates themselves (private keys sealed under the
// master key), the persisted print jobs that put each invoice on the
// fiscal printer exactly once, and the QR code of the verification URL.
//
// It owns the certificates, invoices, invoice_counters and print_jobs
// tables. It does not decode HTTP (package api), talk to a printer's
// wire protocol (device/datecs), deliver events (outbox) or read
// configuration (cmd/posgate): those are given to its constructors.
// Signing schemes live in sub-packages (fiscal/iic).
package fiscal
