// Package store owns posgate's one SQLite file: opening it with the pragmas
// that make a commit survive a power cut, applying the embedded ordered
// migrations, and running transactions with InTx. InTx calls made at the
// same time share one commit and so one fsync (group commit, group.go); a
// writer goroutine owned by DB runs them, the API's before the relay's
// bookkeeping (WithLowPriority).
//
// It owns no table but schema_migrations. Each package that owns a table
// (apikey, idempotency, outbox, webhook, payment, fiscal) owns its SQL and
// offers Tx-suffixed variants that run inside a caller's transaction, so a
// state change and its outbox event commit together.
package store
