-- Registrations with the tax service (owned by package fiscal): one job
-- per invoice of a profile that registers (me, al), committed in the
-- invoice's transaction, plus the device (TCR) and cash deposit
-- registrations. seq is the order of delivery: the worker takes the
-- oldest pending job first, so invoices reach the service in the order
-- they were issued. sends counts requests that left the box and is
-- never reset: a re-send must carry SubseqDelivType.
CREATE TABLE fiscal_registrations (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	id              TEXT NOT NULL UNIQUE, -- the invoice id, or tcr_… / dep_…
	kind            TEXT NOT NULL CHECK (kind IN ('invoice', 'tcr', 'cash_deposit')),
	certificate_id  TEXT NOT NULL,
	payload         TEXT NOT NULL DEFAULT '', -- tcr and cash_deposit: the request (JSON)
	state           TEXT NOT NULL CHECK (state IN ('pending', 'completed', 'error', 'dead')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	max_attempts    INTEGER NOT NULL,
	sends           INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	last_class      TEXT NOT NULL DEFAULT '', -- offline, temporary, rejected
	last_error      TEXT NOT NULL DEFAULT '',
	code            TEXT NOT NULL DEFAULT '', -- the service's error code
	blocking        INTEGER NOT NULL DEFAULT 0,
	result          TEXT NOT NULL DEFAULT '', -- FIC, TCR code or FCDC
	issued_at       INTEGER NOT NULL,
	warned          INTEGER NOT NULL DEFAULT 0, -- deadline warning sent
	completed_at    INTEGER,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX fiscal_registrations_state ON fiscal_registrations (state, seq);
-- The registrations still open, for the deadline check and /healthz's
-- oldest invoice without a FIC: completed rows pile up, these do not.
CREATE INDEX fiscal_registrations_open ON fiscal_registrations (seq) WHERE state != 'completed';

-- Every request sent to the tax service and its answer, kept so an
-- inspector's question can be answered. Neither holds a secret (the
-- request is signed invoice data and the public certificate), so they
-- are stored as sent.
CREATE TABLE fiscal_exchanges (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	registration_id TEXT NOT NULL REFERENCES fiscal_registrations (id),
	attempt         INTEGER NOT NULL,
	sent_at         INTEGER NOT NULL,
	request         TEXT NOT NULL,
	response        TEXT NOT NULL DEFAULT '',
	outcome         TEXT NOT NULL DEFAULT 'sent', -- sent (no outcome yet: a crash), completed, offline, temporary, rejected
	error           TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX fiscal_exchanges_registration ON fiscal_exchanges (registration_id, id);
