-- Webhook endpoints (owned by package webhook). Secrets are sealed under
-- the master key (AES-GCM, aad = id + purpose); the plaintext whsec_ secret
-- exists only in the create and rotate responses. prev_secret_sealed keeps
-- signing until prev_expires_at (rotation overlap). idem_* record the
-- Idempotency-Key of the creating request on the row itself, so a replay
-- can answer with the secret without the secret ever being stored in
-- idempotency_keys in plaintext.
CREATE TABLE webhook_endpoints (
	id                 TEXT PRIMARY KEY,
	url                TEXT NOT NULL,
	events             TEXT NOT NULL DEFAULT '[]', -- JSON array; [] = all
	description        TEXT NOT NULL DEFAULT '',
	category           TEXT NOT NULL DEFAULT '',
	headers            TEXT NOT NULL DEFAULT '{}', -- JSON object
	metadata           TEXT NOT NULL DEFAULT '{}', -- JSON object
	status             TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
	disabled_reason    TEXT NOT NULL DEFAULT '',
	secret_sealed      BLOB NOT NULL,
	prev_secret_sealed BLOB,
	prev_expires_at    INTEGER,
	idem_scope         TEXT,
	idem_key           TEXT,
	idem_hash          BLOB,
	created_at         INTEGER NOT NULL,
	updated_at         INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX webhook_endpoints_idem ON webhook_endpoints (idem_scope, idem_key) WHERE idem_key IS NOT NULL;

-- Events (owned by package outbox), written in the producer's
-- transaction. data holds the exact bytes of the body's "data" member; the
-- envelope around it is assembled per attempt (see outbox/doc.go).
CREATE TABLE outbox_events (
	seq        INTEGER PRIMARY KEY,
	id         TEXT NOT NULL UNIQUE, -- entry_id = webhook-id
	type       TEXT NOT NULL,
	data       BLOB NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_events_type ON outbox_events (type, seq);
CREATE INDEX outbox_events_created ON outbox_events (created_at);

-- One delivery per (event, subscribed endpoint). state: 0 pending
-- (including in flight: the relay holds its claims in memory, so after a
-- crash they are simply due again), 2 delivered, 3 dead. attempts counts
-- attempts that spent budget. The attempt that delivered is recorded on
-- the row itself (last_attempt_at, last_duration_ms, last_response), so
-- the common path writes one row; every other attempt is a row in
-- outbox_attempts.
CREATE TABLE outbox_deliveries (
	id              INTEGER PRIMARY KEY,
	event_seq       INTEGER NOT NULL REFERENCES outbox_events (seq),
	endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
	state           INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 2, 3)),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	last_status      INTEGER NOT NULL DEFAULT 0,
	last_error       TEXT NOT NULL DEFAULT '',
	last_attempt_at  INTEGER,
	last_duration_ms INTEGER NOT NULL DEFAULT 0,
	last_response    BLOB,
	created_at      INTEGER NOT NULL,
	finished_at     INTEGER,
	UNIQUE (event_seq, endpoint_id)
) STRICT;
-- The relay's claim: equality on endpoint, ORDER BY next_attempt_at, so
-- SQLite stops after LIMIT rows whatever the backlog.
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (endpoint_id, next_attempt_at) WHERE state = 0;
CREATE INDEX outbox_deliveries_endpoint ON outbox_deliveries (endpoint_id, id);
CREATE INDEX outbox_deliveries_dead ON outbox_deliveries (endpoint_id, id) WHERE state = 3;
CREATE INDEX outbox_deliveries_delivered ON outbox_deliveries (finished_at) WHERE state = 2;

-- Attempts other than the delivering one: kind is scheduled, manual or probe (a probe while the
-- store is offline spends no budget: spent = 0). status_code 0 = no
-- response. response holds at most 4 KiB of the body.
CREATE TABLE outbox_attempts (
	id          INTEGER PRIMARY KEY,
	delivery_id INTEGER NOT NULL REFERENCES outbox_deliveries (id) ON DELETE CASCADE,
	n           INTEGER NOT NULL,
	kind        TEXT NOT NULL,
	spent       INTEGER NOT NULL,
	started_at  INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL,
	status_code INTEGER NOT NULL,
	error_class TEXT NOT NULL DEFAULT '',
	error       TEXT NOT NULL DEFAULT '',
	response    BLOB
) STRICT;
CREATE INDEX outbox_attempts_delivery ON outbox_attempts (delivery_id);

-- Pending and dead counts per endpoint, kept by package outbox in the
-- same transaction as each state change (one UPDATE per endpoint per
-- batch; a per-row trigger cost more than the rest of the relay's write),
-- so listing endpoints never runs COUNT(*) over a large backlog.
CREATE TABLE outbox_counters (
	endpoint_id TEXT PRIMARY KEY REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
	pending     INTEGER NOT NULL DEFAULT 0,
	dead        INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TRIGGER webhook_endpoints_counters AFTER INSERT ON webhook_endpoints
BEGIN
	INSERT INTO outbox_counters (endpoint_id) VALUES (NEW.id);
END;
