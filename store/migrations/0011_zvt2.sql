-- ZVT, the rest of issue 12 (helper zvt2).
--
-- 1. A payment may also be the partial reversal of a pre-authorisation
-- ('preauth_partial_reversal', ZVT 06 23, PA00P015 §2.10): it releases the
-- unused amount of a reservation and books the rest. SQLite cannot change
-- a CHECK constraint in place, so the table is rebuilt as in 0006, with
-- the same columns, constraints and indexes and the wider type list.

CREATE TABLE payments_new (
	id                  TEXT PRIMARY KEY,
	type                TEXT NOT NULL CHECK (type IN ('sale', 'refund', 'reversal', 'preauth', 'preauth_completion',
		'preauth_reversal', 'preauth_partial_reversal')),
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

-- 2. Terminal operations that are not payments but change money on the
-- acquirer's side: End-of-Day (06 50) settles the batch. A row is
-- committed before the command goes to the terminal (DESIGN §3, "no
-- device command is sent before the record that it was sent is durable")
-- and stays open until the terminal answered or a reconcile at start
-- found out what happened; an interrupted end-of-day is never sent again
-- by itself. doc is the operation as the API returns it.
CREATE TABLE terminal_operations (
	id          TEXT PRIMARY KEY,
	terminal_id TEXT NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('end_of_day')),
	state       TEXT NOT NULL CHECK (state IN ('recorded', 'sent', 'completed', 'failed', 'needs_review')),
	open        INTEGER NOT NULL CHECK (open IN (0, 1)),
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	doc         TEXT NOT NULL
) STRICT;
-- One open operation per terminal at most, whatever the code above does.
CREATE UNIQUE INDEX terminal_operations_open ON terminal_operations (terminal_id) WHERE open = 1;
CREATE INDEX terminal_operations_created ON terminal_operations (terminal_id, created_at, id);
