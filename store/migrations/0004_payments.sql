-- Payments on card terminals: one row per sale, refund or reversal.
-- doc is the payment as the API returns it (amounts, terminal data,
-- receipts, resolution); the columns beside it are what queries and
-- constraints need.

CREATE TABLE payments (
	id                  TEXT PRIMARY KEY,
	type                TEXT NOT NULL CHECK (type IN ('sale', 'refund', 'reversal')),
	terminal_id         TEXT NOT NULL,
	status              TEXT NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'cancelled', 'timeout')),
	-- session_open is 1 from creation until the terminal has ended the
	-- session (06 0F or 06 1E) or a reconcile after a crash resolved it.
	-- A timed-out payment keeps it at 1 until then, so the terminal stays
	-- busy. The partial unique index makes two open sessions on one
	-- terminal impossible, whatever the code above it does.
	session_open        INTEGER NOT NULL CHECK (session_open IN (0, 1)),
	original_payment_id TEXT REFERENCES payments (id),
	key_id              TEXT NOT NULL,
	-- (key_id, idempotency_key) makes a second payment for one request
	-- impossible even if the idempotency record were lost.
	idempotency_key     TEXT,
	created_at          INTEGER NOT NULL,
	updated_at          INTEGER NOT NULL,
	doc                 TEXT NOT NULL,
	UNIQUE (key_id, idempotency_key)
) STRICT;
CREATE UNIQUE INDEX payments_open_terminal ON payments (terminal_id) WHERE session_open = 1;
CREATE INDEX payments_created ON payments (created_at, id);
CREATE INDEX payments_original ON payments (original_payment_id) WHERE original_payment_id IS NOT NULL;
