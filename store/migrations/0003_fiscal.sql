-- Fiscal: taxpayer certificates, invoices with their gapless numbers,
-- and the print jobs that put each invoice on the fiscal printer once.

-- Certificates. The private key is stored only sealed under the master
-- key (AES-GCM, the row id as associated data): the database file alone
-- never yields a signing key. thumbprint is the hex SHA-256 of cert_der.
CREATE TABLE certificates (
	id             TEXT PRIMARY KEY,
	label          TEXT NOT NULL,
	subject        TEXT NOT NULL,
	issuer         TEXT NOT NULL,
	serial         TEXT NOT NULL,
	thumbprint     TEXT NOT NULL UNIQUE,
	tin            TEXT NOT NULL,
	key_type       TEXT NOT NULL,
	not_before     INTEGER NOT NULL,
	not_after      INTEGER NOT NULL,
	cert_der       BLOB NOT NULL,
	key_sealed     BLOB NOT NULL,
	created_at     INTEGER NOT NULL,
	deactivated_at INTEGER
) STRICT;

-- The last ordinal per business unit, device (TCR) and year. It is
-- incremented in the transaction that inserts the invoice, so a rolled
-- back invoice gives its number back and no number is used twice.
CREATE TABLE invoice_counters (
	business_unit TEXT NOT NULL,
	device        TEXT NOT NULL,
	year          INTEGER NOT NULL,
	last          INTEGER NOT NULL,
	PRIMARY KEY (business_unit, device, year)
) STRICT, WITHOUT ROWID;

-- Invoices. doc is the invoice as the API returns it (items, payments,
-- totals, signature); the columns beside it are what queries need.
-- (key_id, idempotency_key) makes a second invoice for one request
-- impossible even if the idempotency record were lost.
CREATE TABLE invoices (
	id                  TEXT PRIMARY KEY,
	type                TEXT NOT NULL CHECK (type IN ('sale', 'refund', 'void')),
	business_unit       TEXT NOT NULL,
	device              TEXT NOT NULL,
	year                INTEGER NOT NULL,
	ordinal             INTEGER NOT NULL,
	original_invoice_id TEXT REFERENCES invoices (id),
	certificate_id      TEXT NOT NULL REFERENCES certificates (id),
	key_id              TEXT NOT NULL,
	idempotency_key     TEXT,
	total               INTEGER NOT NULL,
	issued_at           INTEGER NOT NULL,
	created_at          INTEGER NOT NULL,
	doc                 TEXT NOT NULL,
	UNIQUE (business_unit, device, year, ordinal),
	UNIQUE (key_id, idempotency_key)
) STRICT;
CREATE INDEX invoices_created ON invoices (created_at, id);
CREATE INDEX invoices_original ON invoices (original_invoice_id) WHERE original_invoice_id IS NOT NULL;

-- Print jobs, one per invoice. attempt holds the printer driver's
-- device.PrintAttempt (JSON), written durably before and after each try,
-- so a restart asks the printer instead of printing a second time.
CREATE TABLE print_jobs (
	invoice_id      TEXT PRIMARY KEY REFERENCES invoices (id),
	printer_id      TEXT NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('pending', 'printed', 'dead')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	max_attempts    INTEGER NOT NULL,
	next_attempt_at INTEGER NOT NULL,
	last_error      TEXT NOT NULL DEFAULT '',
	attempt         TEXT,
	receipt_number  INTEGER,
	fiscal_memory   TEXT,
	printed_at      INTEGER,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX print_jobs_due ON print_jobs (state, next_attempt_at);
