-- Webhook endpoints, issue 11 part 7 and issue 18 parts 3-4 (owned by
-- package webhook).
--
-- Custom header values are secrets: headers_sealed holds the JSON object
-- sealed under the master key (aad = id + "headers"), and headers keeps
-- only the names with masked values ("Bearer ****"), which is all the API
-- shows. A SQL migration cannot seal (the key is not in the database), so
-- rows written before this migration keep headers_sealed NULL and their
-- plaintext until webhook.Endpoints.SealStoredHeaders seals them when
-- posgate starts (with secure_delete and a WAL checkpoint, so the
-- plaintext leaves the files too).
ALTER TABLE webhook_endpoints ADD COLUMN headers_sealed BLOB;
-- Per-endpoint delivery controls: requests per second (0 = no limit) and
-- burst; ordering 'fifo' sends one event at a time, in order.
ALTER TABLE webhook_endpoints ADD COLUMN rate_per_second REAL NOT NULL DEFAULT 0;
ALTER TABLE webhook_endpoints ADD COLUMN rate_burst INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'fifo'));
-- Circuit breaker: when the current run of failed attempts began (NULL
-- after a success), and whether an operational event (delivery.exhausted,
-- endpoint.disabled) went out since the last success, so the next success
-- sends endpoint.recovered.
ALTER TABLE webhook_endpoints ADD COLUMN failing_since INTEGER;
ALTER TABLE webhook_endpoints ADD COLUMN alerted INTEGER NOT NULL DEFAULT 0;

-- Attempt numbers only ever grow (owned by package outbox): attempts now
-- counts every attempt sent, manual ones included, and is never reset;
-- the automatic budget is attempts - budget_base, and a recover or a
-- manual attempt moves budget_base instead of rewinding attempts.
ALTER TABLE outbox_deliveries ADD COLUMN budget_base INTEGER NOT NULL DEFAULT 0;
-- A FIFO endpoint's head: its oldest pending delivery.
CREATE INDEX outbox_deliveries_fifo ON outbox_deliveries (endpoint_id, id) WHERE state = 0;

-- Destinations beside webhooks (issue 18 part 1): type 'nats' publishes
-- to a NATS JetStream subject. dest_config holds what is not secret
-- (subject, stream, user, ca_pem) as JSON; dest_sealed the credentials
-- (password, token) sealed under the master key (aad = id + "dest").
ALTER TABLE webhook_endpoints ADD COLUMN type TEXT NOT NULL DEFAULT 'webhook' CHECK (type IN ('webhook', 'nats'));
ALTER TABLE webhook_endpoints ADD COLUMN dest_config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE webhook_endpoints ADD COLUMN dest_sealed BLOB;
