package fiscal

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/posgate/posgate/outbox"
)

// EmitToOutbox is the EmitTxFunc of production: it writes the event and
// its deliveries with outbox.EnqueueTx in the caller's transaction. It is
// the default of InvoicesOptions.EmitTx and PrintJobsOptions.EmitTx.
func EmitToOutbox(ctx context.Context, tx *sql.Tx, eventType string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s: %w", eventType, err)
	}
	if _, err := outbox.EnqueueTx(ctx, tx, outbox.Event{Type: eventType, Data: b}); err != nil {
		return fmt.Errorf("enqueue %s: %w", eventType, err)
	}
	return nil
}
