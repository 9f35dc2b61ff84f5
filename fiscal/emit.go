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
// data already encoded (json.RawMessage) is written as it is.
func EmitToOutbox(ctx context.Context, tx *sql.Tx, eventType string, data any) error {
	b, ok := data.(json.RawMessage)
	if !ok {
		var err error
		if b, err = json.Marshal(data); err != nil {
			return fmt.Errorf("encode %s: %w", eventType, err)
		}
	}
	if _, err := outbox.EnqueueTx(ctx, tx, outbox.Event{Type: eventType, Data: b}); err != nil {
		return fmt.Errorf("enqueue %s: %w", eventType, err)
	}
	return nil
}
