-- API keys. The client secret is never stored: secret_hash authenticates
-- "X-Api-Key: id:secret", and secret_sealed (AES-GCM under the master key
-- file, which lives outside the database) lets the signed mode recompute
-- an HMAC. certificate_id binds the key to the certificate its invoices
-- are signed with (NULL until one is bound).
CREATE TABLE api_keys (
	id             TEXT PRIMARY KEY,
	client_id      TEXT NOT NULL UNIQUE,
	label          TEXT NOT NULL,
	role           TEXT NOT NULL CHECK (role IN ('admin', 'pos')),
	secret_hash    BLOB NOT NULL,
	secret_sealed  BLOB NOT NULL,
	certificate_id TEXT,
	created_at     INTEGER NOT NULL,
	revoked_at     INTEGER
) STRICT;

-- Signatures of signed requests seen within the acceptance window; a
-- signature seen twice is a replay. Rows older than the window are pruned.
CREATE TABLE request_signatures (
	signature TEXT PRIMARY KEY,
	key_id    TEXT NOT NULL,
	seen_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX request_signatures_seen ON request_signatures (seen_at);

-- Answers to creating POSTs by Idempotency-Key, kept 24 h, the body sealed
-- under the master key. A request still running is reserved in memory
-- only (package idempotency), so every row here is a completed answer.
CREATE TABLE idempotency_keys (
	key_id       TEXT NOT NULL,
	idem_key     TEXT NOT NULL,
	request_hash BLOB NOT NULL,
	status       INTEGER NOT NULL DEFAULT 0,
	content_type TEXT NOT NULL DEFAULT '',
	body         BLOB,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	PRIMARY KEY (key_id, idem_key)
) STRICT;
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
