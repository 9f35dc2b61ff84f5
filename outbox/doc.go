// Package outbox is posgate's transactional outbox and the relay that
// drains it to webhook endpoints.
//
// A producer writes its state change and the event in one transaction with
// EnqueueTx, which also writes one delivery row per active endpoint whose
// filter takes the event, so nothing that committed can be missed and
// nothing rolled back is ever sent. The Relay (one goroutine owns its
// loop; Run blocks until cancelled) claims due deliveries per endpoint
// with a lease, sends them through a bounded worker pool, and records
// every attempt and its outcome with all other results that arrived
// meanwhile in one transaction (group commit). A claim moves the row's
// next_attempt_at forward by the lease, so a relay that dies mid-send
// leaves rows that fall due again by themselves: at-least-once, never
// lost. Receivers deduplicate on entry_id (webhook-id).
//
// What is signed. The event's data is stored as the exact bytes the
// producer gave, and never re-encoded. Each attempt wraps them in the
// envelope of DESIGN §6 ({"event","entry_id","timestamp","attempt",
// "max_attempts","last_error","data"}) by appending bytes
// (webhook.AppendBody), and signs that body with a fresh timestamp. The
// body of an attempt is therefore a pure function of the stored event, the
// attempt number and the previous error; "timestamp" in the body is when
// the event happened, the signing time is in the headers.
//
// Retries follow Options.Schedule with jitter only added; 2xx is success,
// 3xx a failure never followed, 410 disables the endpoint, Retry-After is
// honoured up to Options.MaxRetryAfter, and after MaxAttempts a delivery is
// dead, kept for a manual Retry or a Recover. When every endpoint that has
// answered recently fails at the network level (DNS or connect), the store
// is taken to be offline: the relay stops claiming, probes one delivery per
// endpoint every ProbeInterval without spending attempts, and resumes on
// the first answer.
//
// The package owns the outbox_events, outbox_deliveries, outbox_attempts
// and outbox_counters tables; endpoints and the HTTP request belong to
// package webhook.
package outbox
