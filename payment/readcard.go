package payment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
)

// ReadCardTimeout is how long a terminal waits for the card in ReadCard.
const ReadCardTimeout = 30 * time.Second

// CardRead is a card a terminal read without a payment, for a loyalty
// lookup: its type and masked number, never the full number. It is not
// stored and raises no event.
type CardRead struct {
	TerminalID string `json:"terminal_id"`
	// Outcome is "read", or "aborted"/"declined" when no card was read
	// (none presented in time, the customer cancelled).
	Outcome    string `json:"outcome"`
	ResultCode int    `json:"result_code"`
	ResultText string `json:"result_text,omitempty"`
	CardType   string `json:"card_type,omitempty"` // chip, magnetic_stripe
	MaskedPAN  string `json:"masked_pan,omitempty"`
	CardName   string `json:"card_name,omitempty"`
}

type readReply struct {
	res CardRead
	err error
}

// ReadCard has the terminal read a card (ZVT Read Card 06 C0) through its
// session loop, waiting up to ReadCardTimeout for the customer. Errors: a
// *ValidationError for a terminal that cannot read cards, ErrNotFound,
// ErrTerminalOffline, ErrTerminalBusy, or the driver's error.
func (s *Service) ReadCard(ctx context.Context, terminalID string) (CardRead, error) {
	t, ok := s.terms[terminalID]
	if !ok {
		return CardRead{}, ErrNotFound
	}
	if _, ok := t.cfg.Device.(device.CardReader); !ok {
		return CardRead{}, invalid("terminal_id", "terminal %s cannot read cards", terminalID)
	}
	if err := t.reserve(); err != nil {
		return CardRead{}, err
	}
	reply := make(chan readReply, 1)
	t.jobs <- job{readCard: reply}
	select {
	case r := <-reply:
		return r.res, r.err
	case <-ctx.Done():
		return CardRead{}, ctx.Err()
	}
}

// readCard runs a Read Card on t. It reports doubt only for a lost line:
// nothing is charged, but the terminal's state is unknown.
func (s *Service) readCard(ctx context.Context, t *term) (CardRead, bool, error) {
	out := CardRead{TerminalID: t.cfg.ID}
	cr, err := t.cfg.Device.(device.CardReader).ReadCard(ctx, ReadCardTimeout)
	if err != nil {
		return out, errors.Is(err, device.ErrDisconnected), fmt.Errorf("read card on %s: %w", t.cfg.ID, err)
	}
	out.Outcome, out.ResultCode, out.ResultText = string(cr.Outcome), int(cr.Code), cr.Message
	if cr.Outcome == device.Approved {
		out.Outcome, out.CardType, out.MaskedPAN, out.CardName = "read", cr.Type, cr.MaskedPAN, cr.CardName
	}
	// The masked number is not logged either: it is card data.
	s.log.Info().Str(logkey.DeviceID, t.cfg.ID).Str("outcome", out.Outcome).Str("card_type", out.CardType).Msg("card read")
	return out, false, nil
}
