package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

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
		opts:      opts.withDefaults(s.Options().Timeout),
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

// job is one claimed delivery on its way to a worker.
type job struct {
	delivery  int64
	endpoint  string
	eventID   string
	eventType string
	created   time.Time
	data      []byte
	n         int // the attempt number this send carries
	lastError string
	kind      string
	target    webhook.Target
}

// result is a job's outcome.
type result struct {
	job
	webhook.Result
	started time.Time
}

// lane is the relay's view of one active endpoint.
type lane struct {
	target    webhook.Target
	queue     []job // claimed, waiting for a slot
	inflight  int
	nextClaim time.Time // do not look for due rows before this
	// Offline evidence: whether the last result failed at the network
	// level, and when it came.
	netFail    bool
	lastResult time.Time
}

// loop is the state owned by Run's goroutine.
type loop struct {
	r         *Relay
	lanes     map[string]*lane
	order     []string // lane ids, for round-robin dispatch
	rr        int
	inflight  int
	version   int64
	reloadAt  time.Time
	offline   bool
	jobs      chan job
	stmts     *stmts
	failures  int // consecutive store errors, for rate-limited logging
	retention time.Time
}

// Run drains the outbox until ctx is cancelled. It returns nil after a
// clean stop: requests in flight are cancelled and their deliveries, with
// those claimed but not sent, are released to be sent at the next start.
// It returns an error only if the store cannot be used at all.
func (r *Relay) Run(ctx context.Context) error {
	st, err := prepare(ctx, r.db.Write)
	if err != nil {
		return err
	}
	defer st.close()

	jobs := make(chan job, r.opts.Concurrency)
	results := make(chan result, r.opts.Concurrency)
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for range r.opts.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				results <- r.send(sendCtx, j)
			}
		})
	}
	l := &loop{r: r, lanes: map[string]*lane{}, version: -1, jobs: jobs, stmts: st,
		retention: r.opts.Now().Add(time.Minute)}
	r.log.Info().Int("concurrency", r.opts.Concurrency).Int("per_endpoint", r.opts.PerEndpoint).Msg("relay started")

	var pending []result
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		if err := l.reload(ctx); err != nil {
			l.storeError(err)
		}
		l.dispatch()
		if err := l.step(ctx, pending); err != nil {
			if ctx.Err() != nil {
				// The failed batch is acknowledged at shutdown.
				break
			}
			l.storeError(err)
		} else {
			pending = pending[:0]
			l.storeOK()
		}
		l.dispatch()
		l.runRetention(ctx)

		timer.Reset(l.nextWake())
		select {
		case <-ctx.Done():
		case res := <-results:
			pending = l.collect(append(pending, res), results)
		case <-r.wake:
			now := r.opts.Now()
			for _, ln := range l.lanes {
				ln.nextClaim = now
			}
		case <-timer.C:
		}
	}

	// Stop: cancel sends, collect every outstanding result, then record
	// them and release what was claimed but not sent.
	cancelSends()
	close(jobs)
	for l.inflight > 0 {
		pending = l.collect(append(pending, <-results), results)
	}
	wg.Wait()
	var unsent []job
	for _, ln := range l.lanes {
		unsent = append(unsent, ln.queue...)
		ln.queue = nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = store.InTx(sctx, r.db.Write, func(tx *sql.Tx) error {
		if err := l.ack(sctx, tx, pending); err != nil {
			return err
		}
		return l.release(sctx, tx, unsent)
	})
	if err != nil {
		r.log.Warn().Err(err).Msg("relay: record results at stop; their deliveries will be re-sent after the lease")
	}
	r.log.Info().Msg("relay stopped")
	return nil
}

// collect appends every result already waiting, up to the batch size, so
// they commit together, and frees their slots.
func (l *loop) collect(pending []result, results <-chan result) []result {
	l.free(pending[len(pending)-1])
	for len(pending) < l.r.opts.BatchSize {
		select {
		case res := <-results:
			pending = append(pending, res)
			l.free(res)
		default:
			return pending
		}
	}
	return pending
}

func (l *loop) free(res result) {
	l.inflight--
	if ln := l.lanes[res.endpoint]; ln != nil {
		ln.inflight--
	}
}

// dispatch hands queued jobs to workers, round-robin over endpoints, as
// long as slots are free.
func (l *loop) dispatch() {
	if len(l.order) == 0 {
		return
	}
	for progress := true; progress && l.inflight < l.r.opts.Concurrency; {
		progress = false
		for i := 0; i < len(l.order) && l.inflight < l.r.opts.Concurrency; i++ {
			l.rr = (l.rr + 1) % len(l.order)
			ln := l.lanes[l.order[l.rr]]
			if len(ln.queue) == 0 || ln.inflight >= l.r.opts.PerEndpoint {
				continue
			}
			j := ln.queue[0]
			ln.queue = ln.queue[1:]
			ln.inflight++
			l.inflight++
			l.jobs <- j
			progress = true
		}
	}
}

// step acknowledges pending results and claims more work for every
// endpoint with room, in one transaction.
func (l *loop) step(ctx context.Context, pending []result) error {
	now := l.r.opts.Now()
	var want bool
	for _, ln := range l.lanes {
		if l.room(ln, now) > 0 {
			want = true
			break
		}
	}
	if len(pending) == 0 && !want {
		return nil
	}
	l.judgeOffline(pending, now)
	var claimed map[string][]job
	err := store.InTx(ctx, l.r.db.Write, func(tx *sql.Tx) error {
		if err := l.ack(ctx, tx, pending); err != nil {
			return err
		}
		var err error
		claimed, err = l.claim(ctx, tx, now)
		return err
	})
	if err != nil {
		return err
	}
	for id, js := range claimed {
		if ln := l.lanes[id]; ln != nil {
			ln.queue = append(ln.queue, js...)
		}
	}
	return nil
}

// room is how many deliveries to claim for ln now.
func (l *loop) room(ln *lane, now time.Time) int {
	if now.Before(ln.nextClaim) {
		return 0
	}
	if l.offline {
		if ln.inflight+len(ln.queue) > 0 {
			return 0
		}
		return 1
	}
	return l.r.opts.PerEndpoint + l.r.opts.Prefetch - ln.inflight - len(ln.queue)
}

// judgeOffline updates the offline evidence with a batch of results: the
// store is offline when every endpoint heard from within OfflineWindow
// last failed to resolve or connect.
func (l *loop) judgeOffline(pending []result, now time.Time) {
	if len(pending) == 0 {
		return
	}
	for _, res := range pending {
		if res.kind == KindManual || res.Class == webhook.ClassCanceled {
			continue
		}
		if ln := l.lanes[res.endpoint]; ln != nil {
			ln.netFail, ln.lastResult = res.Network, now
		}
	}
	offline, heard := true, false
	for _, ln := range l.lanes {
		if ln.lastResult.IsZero() || now.Sub(ln.lastResult) > l.r.opts.OfflineWindow {
			continue
		}
		heard = true
		offline = offline && ln.netFail
	}
	offline = offline && heard
	switch {
	case offline && !l.offline:
		l.r.log.Warn().Dur("probe_every", l.r.opts.ProbeInterval).
			Msg("every endpoint fails at the network level; store offline, pausing delivery without spending attempts")
	case !offline && l.offline:
		l.r.log.Info().Msg("an endpoint answered; store online, resuming delivery")
		for _, ln := range l.lanes {
			ln.nextClaim = now
		}
	}
	l.offline = offline
}

// nextWake returns how long the loop may sleep.
func (l *loop) nextWake() time.Duration {
	now := l.r.opts.Now()
	next := now.Add(l.r.opts.Poll)
	for _, ln := range l.lanes {
		if ln.nextClaim.Before(next) && l.room(ln, ln.nextClaim) > 0 {
			next = ln.nextClaim
		}
	}
	if l.retention.Before(next) {
		next = l.retention
	}
	return max(next.Sub(now), 0)
}

// reload refreshes the lanes from the active endpoints when they changed,
// and every 30 s (a rotated-out secret stops signing when its overlap ends).
func (l *loop) reload(ctx context.Context) error {
	now := l.r.opts.Now()
	v := l.r.endpoints.Version()
	if v == l.version && now.Before(l.reloadAt) {
		return nil
	}
	ts, err := l.r.endpoints.Targets(ctx)
	if err != nil {
		return err
	}
	l.version, l.reloadAt = v, now.Add(30*time.Second)
	if exp, err := l.r.endpoints.NextExpiry(ctx); err == nil && !exp.IsZero() && exp.Before(l.reloadAt) {
		l.reloadAt = exp
	}
	seen := map[string]bool{}
	l.order = l.order[:0]
	for _, t := range ts {
		seen[t.ID] = true
		l.order = append(l.order, t.ID)
		ln := l.lanes[t.ID]
		if ln == nil {
			ln = &lane{nextClaim: now}
			l.lanes[t.ID] = ln
		}
		ln.target = t
		for i := range ln.queue {
			ln.queue[i].target = t
		}
	}
	var gone []job
	for id, ln := range l.lanes {
		if seen[id] {
			continue
		}
		// Disabled or deleted: what it had claimed goes back (a deleted
		// endpoint's rows are gone already and release is a no-op). A
		// lane with requests in flight stays until they return.
		gone = append(gone, ln.queue...)
		ln.queue = nil
		if ln.inflight == 0 {
			delete(l.lanes, id)
		}
	}
	if len(gone) > 0 {
		return store.InTx(ctx, l.r.db.Write, func(tx *sql.Tx) error { return l.release(ctx, tx, gone) })
	}
	return nil
}

// storeError logs a failed store operation, rate-limited.
func (l *loop) storeError(err error) {
	l.failures++
	if l.failures == 1 || l.failures%100 == 0 {
		l.r.log.Error().Err(err).Int("consecutive_errors", l.failures).Msg("relay: store operation failed; retrying")
	}
	// Back off a little so a broken store is not spun on.
	time.Sleep(min(time.Duration(l.failures)*10*time.Millisecond, time.Second))
}

func (l *loop) storeOK() {
	if l.failures > 0 {
		l.r.log.Info().Int("consecutive_errors", l.failures).Msg("relay: store recovered")
		l.failures = 0
	}
}

// send performs one attempt of j. It runs on a worker goroutine.
func (r *Relay) send(ctx context.Context, j job) (res result) {
	res.job = j
	res.started = r.opts.Now()
	defer func() {
		if p := recover(); p != nil {
			r.log.Error().Interface("panic", p).Int64(logkey.DeliveryID, j.delivery).Msg("relay: send panicked")
			res.Result = webhook.Result{Class: webhook.ClassIO, Err: fmt.Sprint("internal error: ", p)}
		}
	}()
	body := webhook.AppendBody(make([]byte, 0, len(j.data)+256), j.eventType, j.eventID, j.created,
		j.n, r.opts.MaxAttempts, j.lastError, j.data)
	res.Result = r.sender.Send(ctx, j.target, webhook.Message{ID: j.eventID, Body: body, Time: r.opts.Now()})
	return res
}
