package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// childDBEnv makes the test binary act as a relay process (see TestMain).
const childDBEnv = "POSGATE_OUTBOX_TEST_CHILD_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(childDBEnv); path != "" {
		os.Exit(runChildRelay(path))
	}
	os.Exit(m.Run())
}

// runChildRelay runs a relay over the database at path until the process
// is killed.
func runChildRelay(path string) int {
	ctx := context.Background()
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	sender := webhook.NewSender(webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true, Timeout: 2 * time.Second})
	hooks := webhook.New(db, testMaster, sender, webhook.Options{})
	opts := fastOptions()
	opts.PerEndpoint = 4
	if err := outbox.NewRelay(db, hooks, zerolog.Nop(), opts).Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// A relay process killed with SIGKILL mid-drain loses nothing: the
// restarted relay delivers every event at least once.
func TestRelayKilledMidDrainDeliversEverything(t *testing.T) {
	const events = 400
	path := filepath.Join(t.TempDir(), "posgate.db")
	opts := fastOptions()
	e := newEnv(t, path, opts, webhook.SenderOptions{})
	rcv := newReceiver(t, func(int, hit) int {
		time.Sleep(2 * time.Millisecond) // keep the drain going long enough to kill it
		return http.StatusOK
	})
	e.endpoint(rcv.URL)
	ctx := context.Background()
	var ids []string
	err := e.db.InTx(ctx, func(tx *sql.Tx) error {
		for i := range events {
			id, err := outbox.EnqueueTx(ctx, tx, outbox.Event{Type: "invoice.created", Data: []byte(fmt.Sprintf(`{"n":%d}`, i))})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDBEnv+"="+path)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, 20*time.Second, "child relay to deliver some", func() bool { return len(rcv.deliveries()) >= events/4 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	before := len(rcv.deliveries())
	if before >= events {
		t.Fatalf("child delivered all %d before the kill; nothing was tested", before)
	}
	t.Logf("killed the child relay after %d of %d deliveries", before, events)

	e.run()
	waitFor(t, 20*time.Second, "restarted relay to deliver everything", func() bool {
		seen := map[string]bool{}
		for _, h := range rcv.deliveries() {
			seen[h.EntryID] = true
		}
		for _, id := range ids {
			if !seen[id] {
				return false
			}
		}
		return true
	})
	waitFor(t, 5*time.Second, "no pending deliveries", func() bool {
		var n int
		_ = e.db.Read.QueryRow("SELECT COUNT(*) FROM outbox_deliveries WHERE state <> 2").Scan(&n)
		return n == 0
	})
	t.Logf("receiver saw %d requests for %d events (duplicates are the at-least-once price)", len(rcv.deliveries()), events)
}
