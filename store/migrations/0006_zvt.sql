-- Pre-authorisations on card terminals (issue 12): a payment may also be a
-- reservation ('preauth', ZVT 06 22), the booking of part or all of it
-- ('preauth_completion', 06 24) or its release ('preauth_reversal', 06 25).
-- SQLite cannot change a CHECK constraint in place, so the table is
-- rebuilt with the same columns, constraints and indexes as 0004 and the
-- wider type list.

CREATE TABLE payments_new (
	id                  TEXT PRIMARY KEY,
	type                TEXT NOT NULL CHECK (type IN ('sale', 'refund', 'reversal', 'preauth', 'preauth_completion', 'preauth_reversal')),
	terminal_id         TEXT NOT NULL,
	status              TEXT NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled', 'timeout')),
	session_open        INTEGER NOT NULL CHECK (session_open IN (0, 1)),
	original_payment_id TEXT REFERENCES payments_new (id), -- "payments" after the rename
	key_id              TEXT NOT NULL,
	idempotency_key     TEXT,
	created_at          INTEGER NOT NULL,
	updated_at          INTEGER NOT NULL,
	doc                 TEXT NOT NULL,
	UNIQUE (key_id, idempotency_key)
) STRICT;
-- Oldest first, so an original is in place before what refers to it.
INSERT INTO payments_new (id, type, terminal_id, status, session_open, original_payment_id, key_id,
	idempotency_key, created_at, updated_at, doc)
	SELECT id, type, terminal_id, status, session_open, original_payment_id, key_id,
		idempotency_key, created_at, updated_at, doc
	FROM payments ORDER BY created_at, id;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE UNIQUE INDEX payments_open_terminal ON payments (terminal_id) WHERE session_open = 1;
CREATE INDEX payments_created ON payments (created_at, id);
CREATE INDEX payments_original ON payments (original_payment_id) WHERE original_payment_id IS NOT NULL;
