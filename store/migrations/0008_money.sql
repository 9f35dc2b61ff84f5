-- Money and trust (issue 11).

-- Card payments claimed by invoices: one row per invoice and linked
-- payment, with the amount the invoice claims of it (negative on refund
-- and void invoices). An invoice is refused when its card payments would
-- claim more of a payment than the payment's amount, summed over every
-- invoice, in the invoice's creating transaction.
CREATE TABLE invoice_card_payments (
	invoice_id TEXT NOT NULL REFERENCES invoices (id),
	payment_id TEXT NOT NULL,
	amount     INTEGER NOT NULL,
	PRIMARY KEY (invoice_id, payment_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX invoice_card_payments_payment ON invoice_card_payments (payment_id);
INSERT INTO invoice_card_payments (invoice_id, payment_id, amount)
	SELECT i.id, json_extract(p.value, '$.payment_id'), SUM(json_extract(p.value, '$.amount'))
	FROM invoices i, json_each(i.doc, '$.payments') p
	WHERE json_extract(p.value, '$.type') = 'card' AND COALESCE(json_extract(p.value, '$.payment_id'), '') <> ''
	GROUP BY i.id, json_extract(p.value, '$.payment_id');

-- The VAT rates programmed in each printer's groups A…H, as read from the
-- printer (Datecs 32h) on its last connection: invoices are checked
-- against them before anything is committed, so an item is never signed
-- with a rate the printer would print under another group. rates is a
-- JSON array of 8 integers, hundredths of a percent; 10000 (100.00 %)
-- marks a disabled group.
CREATE TABLE printer_vat_rates (
	printer_id TEXT PRIMARY KEY,
	rates      TEXT NOT NULL,
	read_at    INTEGER NOT NULL
) STRICT;

-- Printer operations that print a document the fiscal memory counts: X and
-- Z reports and cash in/out. The row is written durably before the
-- command goes to the printer, with the printer's counters before it
-- (the last Z number, the day's cash in and out); a retry of the same
-- request (key_id, idempotency_key) after a crash asks the printer
-- whether those counters moved instead of printing a second Z report.
CREATE TABLE printer_ops (
	key_id          TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	printer_id      TEXT NOT NULL,
	kind            TEXT NOT NULL CHECK (kind IN ('x', 'z', 'cash_in', 'cash_out')),
	amount          INTEGER NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('pending', 'done')),
	before          TEXT NOT NULL,
	result          TEXT,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	PRIMARY KEY (key_id, idempotency_key)
) STRICT;
