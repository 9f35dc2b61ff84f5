// Package idempotency remembers the response to each creating POST by its
// Idempotency-Key for 24 hours, so a client that retries (after a timeout,
// a dropped connection, a crash of its own) gets the first answer instead
// of a second charge or a second invoice.
//
// It owns the idempotency_keys table. Keys are scoped per API key. The api
// package wraps creating routes with it; resources whose duplication would
// cost money (payments, invoices) also record the key on their own row in
// their creating transaction, so even a crash between that commit and
// Complete cannot produce a second one.
package idempotency
