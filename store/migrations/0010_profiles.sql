-- Country profiles that sign nothing (bg, none) issue invoices without a
-- certificate. invoices.certificate_id is NOT NULL and references
-- certificates, so such invoices refer to this reserved row, which can
-- never sign: it has no key (key_sealed is empty, and unsealing fails), it
-- is deactivated from the start and fiscal.Certificates never lists it.
INSERT INTO certificates (id, label, subject, issuer, serial, thumbprint, tin, key_type, not_before, not_after,
	cert_der, key_sealed, created_at, deactivated_at)
VALUES ('cert_none', 'no certificate (the country profile signs nothing)', '', '', '', 'none', '', 'none', 0, 0,
	X'', X'', 0, 0);
