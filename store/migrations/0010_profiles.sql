-- Country profiles that sign nothing (bg, none) issue invoices without a
-- certificate. invoices.certificate_id is NOT NULL and references
-- certificates, so such invoices refer to this reserved row, which can
-- never sign: it has no key (key_sealed is empty, and unsealing fails), it
-- is deactivated from the start and fiscal.Certificates never lists it.
INSERT INTO certificates (id, label, subject, issuer, serial, thumbprint, tin, key_type, not_before, not_after,
	cert_der, key_sealed, created_at, deactivated_at)
VALUES ('cert_none', 'no certificate (the country profile signs nothing)', '', '', '', 'none', '', 'none', 0, 0,
	X'', X'', 0, 0);

-- Marked copies of printed receipts (POST /v1/invoices/{id}/reprint), one
-- row per copy (its id is derived from the request's Idempotency-Key).
-- attempt is the printer driver's device.PrintAttempt, as in print_jobs:
-- fiscal.Ledger keeps both, so a copy prints once per key.
CREATE TABLE print_copies (
	id         TEXT PRIMARY KEY,
	invoice_id TEXT NOT NULL REFERENCES invoices (id),
	printer_id TEXT NOT NULL,
	attempt    TEXT,
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX print_copies_invoice ON print_copies (invoice_id);
