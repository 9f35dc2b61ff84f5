package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
)

// DefaultTimeout is how long a payment may run on the terminal before
// posgate aborts it (DESIGN §4).
const DefaultTimeout = 90 * time.Second

// Terminal is one configured card terminal.
type Terminal struct {
	ID     string          // e.g. "t1"
	Device device.Terminal // the driver, e.g. a *zvt.Client whose Run is running
	// Online reports whether the line is up (zvt: Client.Link().State).
	// nil means always.
	Online func() bool
	// Currency is the only currency the terminal takes. Default "EUR".
	Currency string
	// Protocol and Port describe the terminal for GET /v1/devices.
	Protocol, Port string
}

// Options configure a Service. Terminals are required.
type Options struct {
	Terminals []Terminal
	// Timeout runs from the moment the request went to the terminal;
	// then posgate sends Abort and marks the payment timeout. Default
	// DefaultTimeout.
	Timeout time.Duration
	// AbortWait bounds one Abort request. Default 10 s.
	AbortWait time.Duration
	// RetryMin and RetryMax bound the jittered wait between attempts to
	// register with and reconcile a terminal. Defaults 500 ms and 30 s.
	RetryMin, RetryMax time.Duration
	// EmitTx writes events. Default EmitToOutbox.
	EmitTx EmitTxFunc
	// Notify is called after a transaction that wrote events commits;
	// wire it to outbox.Relay.Notify. Optional.
	Notify func()
	Log    zerolog.Logger
	// Now is the clock for stored times. Default time.Now. Timeouts use
	// real timers.
	Now func() time.Time
}

// Service runs payments on the configured terminals. Run must be running
// for payments to reach a terminal.
type Service struct {
	db    *store.DB
	opts  Options
	log   zerolog.Logger
	terms map[string]*term
	ids   []string // terminal ids, sorted

	wmu      sync.Mutex // guards watchers
	watchers map[string]chan struct{}
}

// New returns a Service over db. It panics on a nil db, no terminals or
// a duplicate terminal id: programmer's errors.
func New(db *store.DB, opts Options) *Service {
	if db == nil || len(opts.Terminals) == 0 {
		panic("payment: db and at least one terminal are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.AbortWait <= 0 {
		opts.AbortWait = 10 * time.Second
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 500 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 30 * time.Second
	}
	if opts.EmitTx == nil {
		opts.EmitTx = EmitToOutbox
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{db: db, opts: opts, terms: make(map[string]*term), watchers: make(map[string]chan struct{}),
		log: opts.Log.With().Str(logkey.Component, "payment").Logger()}
	for _, t := range opts.Terminals {
		if t.ID == "" || t.Device == nil {
			panic("payment: a terminal needs an ID and a Device")
		}
		if _, dup := s.terms[t.ID]; dup {
			panic("payment: duplicate terminal " + t.ID)
		}
		if t.Currency == "" {
			t.Currency = "EUR"
		}
		s.terms[t.ID] = newTerm(t)
		s.ids = append(s.ids, t.ID)
	}
	sort.Strings(s.ids)
	return s
}

// Run runs one session loop per terminal until ctx ends. Each loop first
// registers with its terminal and reconciles a payment a crash left open
// (Repeat Receipt) before it takes new work. Run returns nil on
// cancellation, after every loop has stopped.
func (s *Service) Run(ctx context.Context) error {
	var g errgroup.Group
	for _, id := range s.ids {
		t := s.terms[id]
		g.Go(func() error {
			s.runTerminal(ctx, t)
			return nil
		})
	}
	return g.Wait()
}

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Millisecond) }

// Create records a payment and hands it to its terminal's session loop;
// it returns at once with the payment pending. Follow it with Wait.
//
// If the caller's key already created a payment under the same
// IdempotencyKey, that payment is returned and nothing is sent; with a
// different request it is ErrIdempotencyReused. Otherwise: a
// *ValidationError; ErrTerminalOffline (nothing is recorded);
// ErrTerminalBusy; ErrAlreadyReversed (also for a refund of a sale whose
// reversal runs or completed); ErrHasRefunds.
func (s *Service) Create(ctx context.Context, req NewPayment, c Caller) (Payment, error) {
	if err := validate(&req); err != nil {
		return Payment{}, err
	}
	var orig *record
	if req.OriginalPaymentID != "" {
		var err error
		if orig, err = getRecord(ctx, s.db.Read, req.OriginalPaymentID); errors.Is(err, ErrNotFound) {
			return Payment{}, invalid("original_payment_id", "no payment %q", req.OriginalPaymentID)
		} else if err != nil {
			return Payment{}, err
		}
		if req.TerminalID == "" {
			req.TerminalID = orig.TerminalID
		}
	}
	t, ok := s.terms[req.TerminalID]
	if !ok {
		if req.TerminalID == "" {
			return Payment{}, invalid("terminal_id", "is required")
		}
		return Payment{}, invalid("terminal_id", "no terminal %q; configured: %s", req.TerminalID, strings.Join(s.ids, ", "))
	}
	// A retried request gets its payment, whatever the terminal or the
	// original payment is like now. On the way to a new payment the
	// transaction below checks that, so the lookup is made here only
	// when the request would be refused.
	orReplay := func(err error) (Payment, error) {
		if c.IdempotencyKey != "" {
			r, rerr := byIdempotencyKey(ctx, s.db.Read, c.KeyID, c.IdempotencyKey)
			if rerr == nil {
				return s.replay(r, req)
			}
			if !errors.Is(rerr, ErrNotFound) {
				return Payment{}, rerr
			}
		}
		return Payment{}, err
	}
	if err := checkAgainst(&req, t.cfg, orig); err != nil {
		return orReplay(err)
	}
	// A payment starts only if its outcome can be recorded: on a data
	// disk with less than store.MinFree left it is refused before the
	// terminal is touched (store.Unavailable: 503), rather than charged
	// with nowhere to write the result.
	if err := s.db.SpaceLeft(); err != nil {
		return orReplay(fmt.Errorf("payment not started: %w", err))
	}
	if err := t.reserve(); err != nil {
		return orReplay(err)
	}
	handed := false
	defer func() {
		if !handed {
			t.release()
		}
	}()
	// The terminal is reserved for this payment and its session loop is
	// idle, so the payment goes out as soon as it is recorded: it is
	// recorded in_progress, with its deadline, in the one transaction
	// that creates it, and nothing more is written before the terminal
	// gets its first byte. (A crash after this commit and before the
	// frame went out is reconciled like one after it went out: the
	// terminal's last transaction is not this payment.)
	now := s.now()
	deadline := now.Add(s.opts.Timeout)
	r := &record{
		Payment: Payment{ID: newID(), Type: req.Type, Status: StatusInProgress, TerminalID: req.TerminalID,
			Amount: req.Amount, Currency: req.Currency, Reference: req.Reference,
			OriginalPaymentID: req.OriginalPaymentID, Receipts: []Receipt{}, CreatedAt: now, UpdatedAt: now,
			StartedAt: &now, DeadlineAt: &deadline},
		Open: true, KeyID: c.KeyID, IdemKey: c.IdempotencyKey,
	}
	var prev *record
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if c.IdempotencyKey != "" {
			p, err := byIdempotencyKey(ctx, tx, c.KeyID, c.IdempotencyKey)
			if err == nil {
				prev = p
				return nil
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if p, err := openOn(ctx, tx, req.TerminalID); err == nil {
			return fmt.Errorf("%w: payment %s is open on %s", ErrTerminalBusy, p.ID, req.TerminalID)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		// A refund and a reversal of one sale exclude each other, both
		// ways, so together they never credit more than the sale: a
		// reversal voids the whole amount, whatever was refunded before.
		if orig != nil && (req.Type == TypeReversal || req.Type == TypeRefund) {
			if _, err := reversalOf(ctx, tx, orig.ID); err == nil {
				return ErrAlreadyReversed
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if req.Type == TypeReversal {
			done, err := refundedOf(ctx, tx, orig.ID)
			if err != nil {
				return err
			}
			if done > 0 {
				return fmt.Errorf("%w: %d of %s's %d is refunded or may be", ErrHasRefunds, done, orig.ID, orig.Amount)
			}
		}
		// Refunds of one sale never add up to more than the sale; the
		// sum is taken in the transaction that adds this one.
		if req.Type == TypeRefund && orig != nil {
			done, err := refundedOf(ctx, tx, orig.ID)
			if err != nil {
				return err
			}
			if done+req.Amount > orig.Amount {
				return invalid("amount", "refunds of %s would reach %d, more than the sale's %d (%d refunded already)",
					orig.ID, done+req.Amount, orig.Amount, done)
			}
		}
		if closesPreAuth(req.Type) {
			if closed, err := preAuthClosedTx(ctx, tx, req.OriginalPaymentID); err != nil {
				return err
			} else if closed {
				return errPreAuthClosed
			}
		}
		if err := insertTx(ctx, tx, r); err != nil {
			return err
		}
		if c.CompleteTx != nil {
			return c.CompleteTx(ctx, tx, s.view(r))
		}
		return nil
	})
	if err != nil {
		return Payment{}, err
	}
	if prev != nil {
		return s.replay(prev, req)
	}
	// Only a payment whose record is durable goes to the terminal: with
	// the store full or failing, the commit above fails, the caller gets
	// 503 and the terminal never sees the request.
	handed = true
	cp := *r
	t.jobs <- job{payment: &cp}
	s.log.Info().Str(logkey.PaymentID, r.ID).Str(logkey.DeviceID, t.cfg.ID).Str("type", string(r.Type)).
		Int64("amount", r.Amount).Msg("payment created")
	return r.Payment, nil
}

// replay answers a retried Create with the payment it created first.
func (s *Service) replay(r *record, req NewPayment) (Payment, error) {
	same := r.Type == req.Type && r.Amount == req.Amount && r.Reference == req.Reference &&
		(req.TerminalID == "" || r.TerminalID == req.TerminalID) &&
		(req.Currency == "" || r.Currency == req.Currency) && r.OriginalPaymentID == req.OriginalPaymentID
	if !same && !(req.Type == TypeReversal && req.Amount == 0 && r.OriginalPaymentID == req.OriginalPaymentID) {
		return Payment{}, ErrIdempotencyReused
	}
	return s.view(r), nil
}

// Get returns a payment. Errors: ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (Payment, error) {
	r, err := getRecord(ctx, s.db.Read, id)
	if err != nil {
		return Payment{}, err
	}
	return s.view(r), nil
}

// Wait returns the payment once it is in a final state, or when d has
// passed or ctx ended, whichever comes first (then as it is).
func (s *Service) Wait(ctx context.Context, id string, d time.Duration) (Payment, error) {
	timer := time.NewTimer(max(d, 0))
	defer timer.Stop()
	for {
		ch := s.watch(id)
		p, err := s.Get(ctx, id)
		if err != nil || p.Status.Final() || d <= 0 {
			return p, err
		}
		select {
		case <-ch:
		case <-timer.C:
			return s.Get(context.WithoutCancel(ctx), id)
		case <-ctx.Done():
			return p, nil
		}
	}
}

// List returns payments oldest first and the next page's cursor ("" at
// the end). Errors: ErrBadCursor.
func (s *Service) List(ctx context.Context, p ListParams) ([]Payment, string, error) {
	rs, next, err := listRecords(ctx, s.db.Read, p)
	if err != nil {
		return nil, "", err
	}
	out := make([]Payment, 0, len(rs))
	for _, r := range rs {
		out = append(out, s.view(r))
	}
	return out, next, nil
}

// Cancel asks for a payment to stop. One not sent yet is cancelled
// without reaching the terminal; for one in progress the terminal is sent
// Abort, and the payment ends
// as the terminal decides (cancelled, or completed if it approved
// first): follow with Wait. Cancelling a payment that already ended is
// a no-op, except a completed one: ErrNotCancellable. Errors also:
// ErrNotFound.
func (s *Service) Cancel(ctx context.Context, id string) (Payment, error) {
	r, err := getRecord(ctx, s.db.Read, id)
	if err != nil {
		return Payment{}, err
	}
	switch r.Status {
	case StatusPending, StatusInProgress:
		// The session loop owns the transitions: it cancels a payment it
		// has not sent yet, and aborts one on the terminal.
		if t, ok := s.terms[r.TerminalID]; ok { // else no loop runs it
			t.requestCancel(id)
		}
	case StatusCompleted:
		return Payment{}, ErrNotCancellable
	}
	return s.Get(ctx, id)
}

// view is the API form of r, with what the terminal shows now.
func (s *Service) view(r *record) Payment {
	p := r.Payment
	if p.Receipts == nil {
		p.Receipts = []Receipt{}
	}
	if t, ok := s.terms[r.TerminalID]; ok && !p.Status.Final() {
		p.TerminalMessage = t.message(r.ID)
	}
	return p
}

// update runs fn on the stored payment in one write transaction and
// commits its changes with the events fn returns. fn returning
// errUnchanged rolls back; update then returns errUnchanged.
func (s *Service) update(ctx context.Context, id string, fn func(tx *sql.Tx, r *record) ([]string, error)) (*record, error) {
	r, err := s.updateQuiet(ctx, id, fn)
	if err == nil {
		s.changed(id)
	}
	return r, err
}

// updateQuiet is update without waking the payment's watchers, for the
// session loop's last write: it frees the terminal first, then wakes
// them.
func (s *Service) updateQuiet(ctx context.Context, id string, fn func(tx *sql.Tx, r *record) ([]string, error)) (*record, error) {
	var (
		out    *record
		events []string
	)
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		r, err := getRecord(ctx, tx, id)
		if err != nil {
			return err
		}
		if events, err = fn(tx, r); err != nil {
			return err
		}
		r.UpdatedAt = s.now()
		if err := saveTx(ctx, tx, r); err != nil {
			return err
		}
		for _, ev := range events {
			if err := s.opts.EmitTx(ctx, tx, ev, r.Payment); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(events) > 0 && s.opts.Notify != nil {
		s.opts.Notify()
	}
	return out, nil
}

// watch returns a channel closed at the payment's next change.
func (s *Service) watch(id string) <-chan struct{} {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ch, ok := s.watchers[id]
	if !ok {
		ch = make(chan struct{})
		s.watchers[id] = ch
	}
	return ch
}

// changed wakes the payment's watchers.
func (s *Service) changed(id string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if ch, ok := s.watchers[id]; ok {
		close(ch)
		delete(s.watchers, id)
	}
}

// TerminalState is a terminal as GET /v1/devices shows it.
type TerminalState struct {
	ID string
	// State is "online", "offline", "busy" (a payment runs or is being
	// reconciled) or "error" (registration failed though the line is up).
	State     string
	PaymentID string // the payment in its session, if any
	LastError string
	Protocol  string
	Port      string
	Software  string // as the terminal's Status Enquiry reported it
}

// Terminals returns the state of every terminal, sorted by id.
func (s *Service) Terminals() []TerminalState {
	out := make([]TerminalState, 0, len(s.ids))
	for _, id := range s.ids {
		out = append(out, s.terms[id].state())
	}
	return out
}

// Terminal returns one terminal's state, and false if there is none.
func (s *Service) Terminal(id string) (TerminalState, bool) {
	t, ok := s.terms[id]
	if !ok {
		return TerminalState{}, false
	}
	return t.state(), true
}

// EndOfDay settles the terminal's batch through its session loop and
// returns the totals. Errors: a *ValidationError for an unknown
// terminal, ErrTerminalOffline, ErrTerminalBusy, or the driver's error.
func (s *Service) EndOfDay(ctx context.Context, terminalID string) (EndOfDayResult, error) {
	t, ok := s.terms[terminalID]
	if !ok {
		return EndOfDayResult{}, ErrNotFound
	}
	if err := s.db.SpaceLeft(); err != nil {
		return EndOfDayResult{}, fmt.Errorf("end-of-day not started: %w", err)
	}
	if err := t.reserve(); err != nil {
		return EndOfDayResult{}, err
	}
	reply := make(chan eodReply, 1)
	t.jobs <- job{eod: reply}
	select {
	case r := <-reply:
		return r.res, r.err
	case <-ctx.Done():
		return EndOfDayResult{}, ctx.Err()
	}
}
