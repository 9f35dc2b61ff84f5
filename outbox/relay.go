package outbox

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// Attempt kinds.
const (
	KindScheduled = "scheduled"
	KindManual    = "manual"
	KindProbe     = "probe"
)

// Delivery states as stored.
const (
	statePending   = 0
	stateDelivered = 2
	stateDead      = 3
)

// Relay drains the outbox to the webhook endpoints. Build it with
// NewRelay and run it with Run; its query methods (Events, Deliveries,
// Retry, Recover, SendTest) are safe to call at any time.
type Relay struct {
	db        *store.DB
	endpoints *webhook.Endpoints
	sender    *webhook.Sender
	log       zerolog.Logger
	opts      Options
	wake      chan struct{}
}

// NewRelay returns a relay over db delivering to endpoints through their
// sender.
func NewRelay(db *store.DB, endpoints *webhook.Endpoints, log zerolog.Logger, opts Options) *Relay {
	if db == nil || endpoints == nil {
		panic("outbox: db and endpoints are required")
	}
	s := endpoints.Sender()
	return &Relay{
		db:        db,
		endpoints: endpoints,
		sender:    s,
		log:       log.With().Str(logkey.Component, "outbox").Logger(),
		opts:      opts.withDefaults(),
		wake:      make(chan struct{}, 1),
	}
}

// Options returns the relay's options with defaults filled in.
func (r *Relay) Options() Options { return r.opts }

// Notify tells the relay new deliveries are due. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Enqueue writes e in its own transaction and notifies the relay.
func (r *Relay) Enqueue(ctx context.Context, e Event) (string, error) {
	var id string
	err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = EnqueueTx(ctx, tx, e)
		return err
	})
	if err != nil {
		return "", err
	}
	r.Notify()
	return id, nil
}

// Run drains the outbox until ctx is cancelled. It returns nil after a
// clean stop: requests in flight are cancelled and their deliveries, with
// those claimed but not yet sent, are released to be sent at the next
// start. Only the loop goroutine touches the store's relay state; lane
// workers only send.
func (r *Relay) Run(ctx context.Context) error {
	st, err := prepare(ctx, r.db)
	if err != nil {
		return err
	}
	defer st.close()

	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	l := &loop{
		r:         r,
		lanes:     map[string]*lane{},
		version:   -1,
		stmts:     st,
		sendCtx:   sendCtx,
		sem:       make(chan struct{}, r.opts.Concurrency),
		results:   newMailbox(),
		retention: r.opts.Now().Add(time.Minute),
	}
	if r.opts.BusyRate > 0 {
		l.busy = rate.NewLimiter(rate.Limit(r.opts.BusyRate), 1)
	}
	r.log.Info().Int("concurrency", r.opts.Concurrency).Int("per_endpoint", r.opts.PerEndpoint).Msg("relay started")

	var pending []result
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		// Results that came without waking the loop (see resultsWanted)
		// join the batch.
		pending = l.collect(pending, r.opts.BatchSize)
		if err := l.reload(ctx); err != nil {
			l.storeError(err)
		}
		if err := l.step(ctx, pending); errors.Is(err, errWait) {
			// Results wait for a fuller batch.
		} else if err != nil {
			if ctx.Err() != nil {
				break // the batch is recorded at shutdown
			}
			l.storeError(err)
		} else {
			pending = pending[:0]
			l.storeOK()
		}
		l.runRetention(ctx)

		timer.Reset(l.nextWake(len(pending)))
		l.results.wakeAt(l.resultsWanted(len(pending)))
		results := l.results.ready
		if len(pending) >= r.opts.BatchSize {
			results = nil // a full batch waits for its commit, not for more
		}
		select {
		case <-ctx.Done():
		case <-results:
			pending = l.collect(pending, r.opts.BatchSize)
		case <-r.wake:
			now := r.opts.Now()
			for _, ln := range l.lanes {
				ln.nextClaim = now
			}
		case <-timer.C:
		}
	}

	// Stop: jobs not yet picked up come back canceled, requests in
	// flight are cancelled; collect every outstanding result, record
	// them and release the rest.
	for _, ln := range l.lanes {
		ln.stop()
	}
	cancelSends()
	l.results.wakeAt(1)
	for l.outstanding() > 0 {
		<-l.results.ready
		pending = l.collect(pending, math.MaxInt)
	}
	l.wg.Wait()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := store.InTx(sctx, r.db.Write, func(tx *sql.Tx) error { return l.ack(sctx, tx, pending) }); err != nil {
		r.log.Warn().Err(err).Msg("relay: record results at stop; their deliveries will be sent again at the next start")
	}
	// Its keep-alive connections would outlive it by the idle timeout.
	r.sender.CloseIdleConnections()
	r.log.Info().Msg("relay stopped")
	return nil
}
