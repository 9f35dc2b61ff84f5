package outbox

import (
	"context"
	"database/sql"
	"fmt"
)

// tally gathers changes to the per-endpoint counters within one
// transaction, so a batch of any size costs one UPDATE per endpoint.
// Every statement that moves a delivery into or out of pending or dead
// adds to a tally in the same transaction: that is what keeps the
// counters equal to the rows (the property test checks it).
type tally map[string]*Counts

func (t tally) add(endpoint string, pending, dead int64) {
	c := t[endpoint]
	if c == nil {
		c = &Counts{}
		t[endpoint] = c
	}
	c.Pending += pending
	c.Dead += dead
}

func (t tally) flush(ctx context.Context, tx *sql.Tx) error {
	for ep, c := range t {
		if c.Pending == 0 && c.Dead == 0 {
			continue
		}
		_, err := tx.ExecContext(ctx, "UPDATE outbox_counters SET pending = pending + ?, dead = dead + ? WHERE endpoint_id = ?",
			c.Pending, c.Dead, ep)
		if err != nil {
			return fmt.Errorf("update counters of %s: %w", ep, err)
		}
	}
	clear(t)
	return nil
}
