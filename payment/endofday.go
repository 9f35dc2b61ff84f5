package payment

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
)

// EndOfDayState is where an end-of-day is.
type EndOfDayState string

// End-of-day states. recorded and sent are open: the operation is in the
// terminal_operations table before anything reaches the terminal
// (recorded: at most Send Turnover Totals went out; sent: End-of-Day may
// have). The others are final.
const (
	EndOfDayRecorded    EndOfDayState = "recorded"
	EndOfDaySent        EndOfDayState = "sent"
	EndOfDayCompleted   EndOfDayState = "completed"
	EndOfDayFailed      EndOfDayState = "failed"       // the terminal settled nothing
	EndOfDayNeedsReview EndOfDayState = "needs_review" // interrupted, and the terminal cannot tell
)

// EndOfDayResult is a terminal's settlement, as recorded.
type EndOfDayResult struct {
	ID         string        `json:"id"`
	TerminalID string        `json:"terminal_id"`
	State      EndOfDayState `json:"state"`
	ResultCode int           `json:"result_code"`
	ResultText string        `json:"result_text,omitempty"`
	Total      int64         `json:"total"` // minor units, as the terminal reported
	Currency   string        `json:"currency"`
	// TotalBefore is the turnover Send Turnover Totals (ZVT 06 10)
	// reported just before End-of-Day was sent; a reconcile compares it
	// with the turnover then. nil if the terminal could not report it.
	TotalBefore *int64    `json:"total_before,omitempty"`
	TraceNumber int       `json:"trace_number,omitempty"`
	Receipts    []Receipt `json:"receipts"`
	// Reconciled says the answer was lost and the state was found out at
	// start; Reason says how.
	Reconciled bool      `json:"reconciled,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	At         time.Time `json:"at"` // the last change
}

func (r *EndOfDayResult) open() bool {
	return r.State == EndOfDayRecorded || r.State == EndOfDaySent
}

func newOpID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("payment: crypto/rand failed: " + err.Error())
	}
	return "eod_" + strings.ToLower(base64.RawURLEncoding.EncodeToString(b[:]))
}

// saveOpTx inserts or updates an end-of-day row.
func saveOpTx(ctx context.Context, tx *sql.Tx, r *EndOfDayResult) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode end of day: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO terminal_operations (id, terminal_id, kind, state, open, created_at, updated_at, doc)
		VALUES (?, ?, 'end_of_day', ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, open = excluded.open, updated_at = excluded.updated_at, doc = excluded.doc`,
		r.ID, r.TerminalID, string(r.State), boolInt(r.open()), store.Millis(r.CreatedAt), store.Millis(r.At), string(doc))
	if err != nil {
		return fmt.Errorf("save end of day %s: %w", r.ID, err)
	}
	return nil
}

func (s *Service) saveOp(ctx context.Context, r *EndOfDayResult) error {
	r.At = s.now()
	return s.db.InTx(ctx, func(tx *sql.Tx) error { return saveOpTx(ctx, tx, r) })
}

func scanOps(rows *sql.Rows) ([]EndOfDayResult, error) {
	defer rows.Close()
	var out []EndOfDayResult
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("read end of day: %w", err)
		}
		var r EndOfDayResult
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, fmt.Errorf("decode end of day: %w", err)
		}
		if r.Receipts == nil {
			r.Receipts = []Receipt{}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read end of day: %w", err)
	}
	return out, nil
}

// EndOfDays returns a terminal's last end-of-days, newest first, at most
// limit (default 20, at most 100). Errors: ErrNotFound for an unknown
// terminal.
func (s *Service) EndOfDays(ctx context.Context, terminalID string, limit int) ([]EndOfDayResult, error) {
	if _, ok := s.terms[terminalID]; !ok {
		return nil, ErrNotFound
	}
	if limit <= 0 {
		limit = 20
	}
	rows, err := s.db.Read.QueryContext(ctx, `SELECT doc FROM terminal_operations WHERE terminal_id = ? AND kind = 'end_of_day'
		ORDER BY created_at DESC, id DESC LIMIT ?`, terminalID, min(limit, 100))
	if err != nil {
		return nil, fmt.Errorf("list end of days: %w", err)
	}
	out, err := scanOps(rows)
	if out == nil {
		out = []EndOfDayResult{}
	}
	return out, err
}

// lineError reports errors after which the terminal's state is unknown
// to posgate: the line is down, was lost, or the terminal stopped
// answering.
func lineError(err error) bool {
	return errors.Is(err, device.ErrOffline) || errors.Is(err, device.ErrDisconnected) ||
		errors.Is(err, device.ErrTimeout) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// turnover asks the terminal for its unsettled total (Send Turnover
// Totals, ZVT 06 10, §2.43: nothing is settled). ok is false when the
// terminal cannot report it (no such command, or refused); err is a line
// error.
func turnover(ctx context.Context, d device.Terminal) (total int64, ok bool, err error) {
	dt, isDiag := d.(device.DiagnosticTerminal)
	if !isDiag {
		return 0, false, nil
	}
	res, err := dt.TurnoverTotals(ctx, nil)
	switch {
	case err != nil && lineError(err):
		return 0, false, err
	case err != nil, res.Outcome != device.Approved, res.Info == nil:
		return 0, false, nil
	}
	return res.Info.Amount, true, nil
}

// endOfDay settles the terminal's batch. The end-of-day is committed to
// the store before anything reaches the terminal, and again, with the
// turnover Send Turnover Totals reports, before End-of-Day (06 50) goes
// out: if either write fails, nothing is settled. It reports doubt when
// the terminal may have settled without posgate knowing the outcome; the
// row then stays open for reconcileEndOfDay.
func (s *Service) endOfDay(ctx context.Context, t *term) (out EndOfDayResult, doubt bool, err error) {
	log := s.log.With().Str(logkey.DeviceID, t.cfg.ID).Logger()
	now := s.now()
	out = EndOfDayResult{ID: newOpID(), TerminalID: t.cfg.ID, State: EndOfDayRecorded, Currency: t.cfg.Currency,
		Receipts: []Receipt{}, CreatedAt: now, At: now}
	if err := s.saveOp(ctx, &out); err != nil {
		return out, false, fmt.Errorf("record end of day on %s: %w", t.cfg.ID, err)
	}
	fail := func(why string, cause error) (EndOfDayResult, bool, error) {
		out.State, out.Reason = EndOfDayFailed, why
		if err := s.saveOp(context.WithoutCancel(ctx), &out); err != nil {
			// Still recorded: reconcile closes it, as nothing was sent.
			log.Error().Err(err).Str("end_of_day", out.ID).Msg("end of day failure not recorded")
		}
		return out, false, fmt.Errorf("end of day on %s: %s: %w", t.cfg.ID, why, cause)
	}
	before, known, err := turnover(ctx, t.cfg.Device)
	if err != nil {
		return fail("the terminal did not answer Send Turnover Totals; nothing was settled", err)
	}
	if known {
		out.TotalBefore = &before
	}
	out.State = EndOfDaySent
	if err := s.saveOp(ctx, &out); err != nil {
		return fail("its sending could not be recorded; nothing was sent", err)
	}
	h := func(ctx context.Context, e device.TxEvent) error {
		if e.Kind != device.EventStatusInfo || e.Info == nil {
			return nil
		}
		// The totals are durable before the terminal is told it may close
		// the batch.
		out.Total, out.TraceNumber = e.Info.Amount, e.Info.Trace
		return retryLater(s.saveOp(ctx, &out))
	}
	res, err := t.cfg.Device.EndOfDay(ctx, h)
	if err != nil {
		if errors.Is(err, device.ErrOffline) && !errors.Is(err, device.ErrDisconnected) {
			return fail("the terminal is offline; nothing was sent", err)
		}
		log.Warn().Err(err).Str("end_of_day", out.ID).Msg("end of day in doubt; reconciling the terminal")
		return out, true, fmt.Errorf("end of day on %s interrupted; it is reconciled with the terminal, not sent again: %w", t.cfg.ID, err)
	}
	out.ResultCode, out.ResultText = int(res.Code), res.Message
	if res.Info != nil {
		out.Total, out.TraceNumber = res.Info.Amount, res.Info.Trace
	}
	for _, rc := range res.Receipts {
		out.Receipts = append(out.Receipts, Receipt{Kind: rc.Kind, Lines: rc.Lines})
	}
	out.State = EndOfDayCompleted
	if res.Outcome != device.Approved {
		out.State, out.Reason = EndOfDayFailed, "the terminal refused it; nothing was settled"
	}
	if err := s.saveOp(ctx, &out); err != nil {
		log.Error().Err(err).Str("end_of_day", out.ID).Msg("end of day result not recorded; reconciling")
		return out, true, fmt.Errorf("end of day on %s: record the result: %w", t.cfg.ID, err)
	}
	log.Info().Str("end_of_day", out.ID).Int64("total", out.Total).Str("state", string(out.State)).Msg("end of day")
	return out, false, nil
}

// reconcileEndOfDay resolves the end-of-day a crash or a lost line left
// open on t, by asking the terminal, never by sending End-of-Day again:
// Send Turnover Totals reports what is still unsettled, and the turnover
// recorded before End-of-Day went out tells whether it settled. It
// returns an error, to be retried, while the terminal cannot answer.
func (s *Service) reconcileEndOfDay(ctx context.Context, t *term) error {
	rows, err := s.db.Read.QueryContext(ctx, `SELECT doc FROM terminal_operations WHERE terminal_id = ? AND open = 1`, t.cfg.ID)
	if err != nil {
		return fmt.Errorf("read open end of day: %w", err)
	}
	ops, err := scanOps(rows)
	if err != nil || len(ops) == 0 {
		return err
	}
	op := ops[0]
	log := s.log.With().Str(logkey.DeviceID, t.cfg.ID).Str("end_of_day", op.ID).Logger()
	op.Reconciled = true
	switch {
	case op.State == EndOfDayRecorded:
		op.State, op.Reason = EndOfDayFailed, "interrupted before End-of-Day was sent; nothing was settled"
	case op.TotalBefore == nil:
		op.State = EndOfDayNeedsReview
		op.Reason = "interrupted after End-of-Day was sent, and the terminal cannot report its turnover; check its end-of-day journal before running it again"
	default:
		now, known, err := turnover(ctx, t.cfg.Device)
		if err != nil {
			return fmt.Errorf("send turnover totals on %s: %w", t.cfg.ID, err)
		}
		before := *op.TotalBefore
		switch {
		case !known:
			op.State, op.Reason = EndOfDayNeedsReview, "interrupted after End-of-Day was sent, and the terminal no longer reports its turnover"
		case now == 0 && before == 0:
			op.State, op.Reason = EndOfDayCompleted, "interrupted; the batch was empty, so there was nothing to settle"
		case now == 0:
			op.State, op.Reason = EndOfDayCompleted, "interrupted after the terminal settled: its turnover is empty now"
			if op.Total == 0 { // the Status-Information was not recorded
				op.Total = before
			}
		case now == before:
			op.State, op.Reason = EndOfDayFailed, "interrupted before the terminal settled: its turnover is unchanged; run end-of-day again"
		default:
			op.State = EndOfDayNeedsReview
			op.Reason = fmt.Sprintf("interrupted; the terminal's turnover went from %d to %d", before, now)
		}
	}
	if err := s.saveOp(ctx, &op); err != nil {
		return err
	}
	log.Warn().Str("state", string(op.State)).Str("reason", op.Reason).Msg("interrupted end of day reconciled")
	return nil
}
