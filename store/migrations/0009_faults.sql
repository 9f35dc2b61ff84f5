-- The health probe's row: /healthz proves the store takes a write by
-- committing this one row (store.DB.Writable), so a full or failing disk
-- shows there, not only in the answers of creating requests.
CREATE TABLE store_probe (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	written_at INTEGER NOT NULL
) STRICT;
