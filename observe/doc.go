// Package observe keeps the figures a shop's monitoring needs, in
// Prometheus conventions (snake_case, base units, _total for counters):
// payments by outcome, invoice fiscalizations by state, print jobs by
// outcome, webhook delivery attempts by class, device state changes and
// the tax service's latency.
//
// The outcome counters follow the store rather than each package: a
// Tailer reads the events and attempts committed since its last look
// (outbox_events by seq, outbox_attempts by id, delivered deliveries by
// finished_at), so a figure moves exactly when the fact is durable, and
// no package needs a metrics dependency. The tax-service client calls
// TaxServiceRequest directly. Everything registers on VictoriaMetrics'
// default set, which GET /metrics writes.
package observe
