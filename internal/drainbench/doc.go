// Package drainbench gives benchmarks a webhook backlog draining at full
// speed: rows pending deliveries seeded straight into the outbox tables of
// a store and an outbox relay with production options sending them to a
// loopback receiver. Benchmarks use it to measure the till (payments,
// invoices) while the relay drains (DESIGN §8: p99 at most 2× idle).
// Test-only: nothing in the daemon imports it.
package drainbench
