package webhook_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"github.com/posgate/posgate/store"
)

// The brokers migration replaces the type column to widen its CHECK:
// rows written before it keep their type (and their deliveries, which
// reference the table ON DELETE CASCADE), and the new column still
// refuses unknown types.
func TestBrokersMigrationKeepsTypes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posgate.db")
	raw, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	ms := store.Migrations()
	idx := -1
	for i, m := range ms {
		if m.Name == "brokers" {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatal("no brokers migration")
	}
	if _, err := raw.Exec(`PRAGMA auto_vacuum = INCREMENTAL; CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:idx] {
		if _, err := raw.Exec(m.SQL); err != nil {
			t.Fatalf("%d %s: %v", m.Version, m.Name, err)
		}
		if _, err := raw.Exec("INSERT INTO schema_migrations VALUES (?, ?, 0)", m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO webhook_endpoints (id, url, status, secret_sealed, created_at, updated_at, type, dest_config) VALUES ('we_n', 'tls://h:1', 'active', x'00', 0, 0, 'nats', '{"subject":"a"}')`,
		`INSERT INTO webhook_endpoints (id, url, status, secret_sealed, created_at, updated_at) VALUES ('we_w', 'https://h', 'active', x'00', 0, 0)`,
		`INSERT INTO outbox_events (seq, id, type, data, created_at) VALUES (1, 'evt_1', 'ping', x'7b7d', 0)`,
		`INSERT INTO outbox_deliveries (event_seq, endpoint_id, next_attempt_at, created_at) VALUES (1, 'we_n', 0, 0)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, w, dels int
	if err := db.Read.QueryRow(`SELECT (SELECT COUNT(*) FROM webhook_endpoints WHERE id = 'we_n' AND type = 'nats' AND dest_config = '{"subject":"a"}'),
		(SELECT COUNT(*) FROM webhook_endpoints WHERE id = 'we_w' AND type = 'webhook'), (SELECT COUNT(*) FROM outbox_deliveries)`).Scan(&n, &w, &dels); err != nil {
		t.Fatal(err)
	}
	if n != 1 || w != 1 || dels != 1 {
		t.Fatalf("after the migration: nats row %d, webhook row %d, deliveries %d", n, w, dels)
	}
	if _, err := db.Write.Exec(`UPDATE webhook_endpoints SET type = 'amqp' WHERE id = 'we_w'`); err != nil {
		t.Fatalf("amqp refused: %v", err)
	}
	if _, err := db.Write.Exec(`UPDATE webhook_endpoints SET type = 'mqtt' WHERE id = 'we_w'`); err == nil {
		t.Fatal("an unknown type was stored")
	}
}
