// Package outbox is posgate's transactional outbox and the relay that
// drains it to webhook endpoints.
//
// A producer writes its state change and the event in one transaction with
// EnqueueTx, which also writes one delivery row per active endpoint whose
// filter takes the event, so nothing that committed can be missed and
// nothing rolled back is ever sent. The Relay (Run blocks until cancelled;
// one goroutine owns its loop and the store) gives each active endpoint a
// lane: a queue of claimed deliveries and PerEndpoint workers sending from
// it, so a slow or dead endpoint only ever occupies its own workers. The
// loop claims due rows per endpoint on a connection of the read pool it
// holds (claimReader), which sees committed rows only, and queues them at
// once; it records results in one
// low-priority transaction per batch (a full BatchSize, or AckDelay after
// the first result, or at once for a FIFO head or an offline probe), so at
// full speed a commit carries hundreds of deliveries while the workers go
// on sending what the last claim found. Each lane's claims scan on from
// the last row they took (a cursor that starts over every second), so the
// rows in flight are not read again by every claim.
//
// Claims are held by the relay in memory, not written to the row: one
// relay owns a store, so a lease column would only guard against itself,
// at the cost of one more UPDATE per delivery on a path budgeted at 0.7×
// the raw loopback HTTP rate (DESIGN §8), and would hold back re-sending
// after a crash until it expired. A claimed row stays pending in the store until
// its result commits, so a relay killed mid-send loses nothing: the next
// start sends those rows again (at-least-once; receivers deduplicate on
// entry_id, the webhook-id header). Running two relays on one store would
// send some deliveries twice, never lose one.
//
// What is signed. The event's data is stored as the exact bytes the
// producer gave, and never re-encoded. Each attempt wraps them in the
// envelope of DESIGN §6 ({"event","entry_id","timestamp","attempt",
// "max_attempts","last_error","store_id","data"}) by appending bytes
// (webhook.AppendBody; a claim writes the same head into room the store
// leaves in front of the data), and signs that body with a fresh
// timestamp. The
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
// Attempt numbers only grow: attempts counts every attempt sent (manual
// and unspent probes included) and is never reset; the automatic budget is
// attempts - budget_base, which a recover or a manual attempt moves.
//
// Per-endpoint controls (webhook.Endpoint): a rate limit paces a lane's
// workers (golang.org/x/time/rate); FIFO ordering makes the lane claim
// only its head, the oldest pending delivery, and only once the previous
// result is recorded, so a dead event leaves the queue. The circuit
// breaker disables an endpoint whose attempts have all failed for
// DisableAfter. Operational events (delivery.exhausted, endpoint.disabled,
// endpoint.recovered) are enqueued in the acknowledging transaction, never
// to the endpoint they are about (ops.go).
//
// The package owns the outbox_events, outbox_deliveries, outbox_attempts
// and outbox_counters tables; endpoints and the HTTP request belong to
// package webhook.
package outbox
