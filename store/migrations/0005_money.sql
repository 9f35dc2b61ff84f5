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
