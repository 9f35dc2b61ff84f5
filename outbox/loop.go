package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// job is one claimed delivery on its way to a lane worker.
type job struct {
	delivery  int64
	endpoint  string
	eventID   string
	eventType string
	created   time.Time
	body      []byte // the exact bytes sent and signed (webhook.AppendBody)
	n         int    // the attempt number this send carries
	base      int    // budget_base: attempts n-base of MaxAttempts are spent
	lastError string
	kind      string
	gen       int64 // the lane's claim generation
}

// result is a job's outcome.
type result struct {
	job
	webhook.Result
	started time.Time
}

// lane is one active endpoint: a queue of claimed jobs and PerEndpoint
// workers sending from it, so one slow endpoint only ever occupies its
// own workers. The queue holds up to Prefetch jobs beyond those in
// flight, so workers keep sending while the loop commits a batch.
type lane struct {
	id      string
	target  atomic.Pointer[webhook.Target] // read at send time: a rotation applies at once
	jobs    chan job
	stopped atomic.Bool  // queued jobs come back canceled, unsent
	flushed atomic.Int64 // queued jobs of this generation or older come back canceled

	gen int64 // claim generation, owned by the loop

	// Owned by the loop goroutine.
	out       int                // claimed and not yet returned
	held      map[int64]struct{} // claimed and not yet recorded: skipped by claims
	after     cursor             // where the next claim scans from (claimLane)
	nextClaim time.Time          // do not look for due rows before this
	// Offline evidence: did the last result fail at the network level,
	// and when did it come.
	netFail    bool
	lastResult time.Time
	// failStreak counts failed attempts since the last success, for
	// rate-limited logging.
	failStreak int
	// failingSince and alerted mirror the endpoint's circuit-breaker
	// columns (webhook.Target), so the store is written only when they
	// change.
	failingSince time.Time
	alerted      bool
	// disabling is set once this lane's endpoint was disabled by the
	// relay (410, breaker); its lane stops at the next reload.
	disabling bool

	// limiter paces requests (the endpoint's rate_limit); shared by the
	// lane's workers, retuned by reload. Workers wait under wait's
	// context, which ends when the lane stops (a worker waiting for a
	// slow rate's next token lets go at once when the endpoint is
	// disabled) and is replaced when the limit changes (a wait computed
	// under the old rate starts over under the new one).
	limiter *rate.Limiter
	wait    atomic.Pointer[waitCtx]
}

type waitCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// retune applies t's rate limit; waits under the old one start over.
func (ln *lane) retune(t *webhook.Target, parent context.Context) {
	lim, burst := limit(t)
	if lim == ln.limiter.Limit() && burst == ln.limiter.Burst() {
		return
	}
	ln.limiter.SetBurst(burst)
	ln.limiter.SetLimit(lim)
	ctx, cancel := context.WithCancel(parent)
	if old := ln.wait.Swap(&waitCtx{ctx, cancel}); old != nil {
		old.cancel()
	}
}

// pace waits for the lane's rate limit and reports whether to send: not
// when the lane stopped, the relay is stopping or the job was flushed.
func (l *loop) pace(ln *lane, j job) bool {
	for ln.target.Load().RateLimit.PerSecond > 0 {
		err := ln.limiter.Wait(ln.wait.Load().ctx)
		if ln.stopped.Load() || l.sendCtx.Err() != nil || j.gen <= ln.flushed.Load() {
			return false
		}
		if err == nil {
			break
		}
		// Retuned meanwhile: wait again under the new limit (a moment
		// first, in case the error came from a half-applied retune).
		if ln.wait.Load().ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
	}
	return true
}

// limit returns t's rate limit as a rate.Limit and burst.
func limit(t *webhook.Target) (rate.Limit, int) {
	if t.RateLimit.PerSecond <= 0 {
		return rate.Inf, 0
	}
	return rate.Limit(t.RateLimit.PerSecond), max(t.RateLimit.Burst, 1)
}

// fifo reports whether the lane sends one delivery at a time, in order.
func (ln *lane) fifo() bool { return ln.target.Load().Ordering == webhook.OrderingFIFO }

func (ln *lane) stop() {
	if !ln.stopped.Swap(true) {
		close(ln.jobs)
		ln.wait.Load().cancel()
	}
}

// loop is the state owned by Run's goroutine.
type loop struct {
	r         *Relay
	lanes     map[string]*lane
	order     []string // lane ids in claim order
	version   int64
	reloadAt  time.Time
	offline   bool
	stmts     *stmts
	sendCtx   context.Context
	sem       chan struct{} // caps requests in flight across lanes
	busy      *rate.Limiter // paces sends while the till is busy; nil: never
	results   *mailbox
	wg        sync.WaitGroup
	failures  int // consecutive store errors, for rate-limited logging
	retention time.Time
	// firstPending is when the oldest result not yet recorded arrived.
	firstPending time.Time
}

// errWait is step's answer when nothing needs the store yet.
var errWait = errors.New("nothing to do yet")

// startLane starts a lane's workers.
func (l *loop) startLane(t webhook.Target, now time.Time) *lane {
	o := l.r.opts
	ln := &lane{id: t.ID, jobs: make(chan job, o.PerEndpoint+o.Prefetch), nextClaim: now, held: map[int64]struct{}{},
		failingSince: t.FailingSince, alerted: t.Alerted}
	ln.limiter = rate.NewLimiter(limit(&t))
	wctx, cancel := context.WithCancel(l.sendCtx)
	ln.wait.Store(&waitCtx{wctx, cancel})
	ln.target.Store(&t)
	for range o.PerEndpoint {
		l.wg.Go(func() {
			// One webhook.Worker per goroutine: it keeps the context and
			// timer that bound an attempt from one attempt to the next.
			w := l.r.sender.NewWorker(l.sendCtx)
			defer w.Close()
			send := w.Send
			for j := range ln.jobs {
				if ln.stopped.Load() || j.gen <= ln.flushed.Load() {
					l.results.put(result{job: j, Result: webhook.Result{Class: webhook.ClassCanceled}})
					continue
				}
				// The rate limit paces sends, not claims: a job waits
				// here, and comes back unsent if the lane stops or the
				// store goes offline meanwhile.
				if !l.pace(ln, j) {
					l.results.put(result{job: j, Result: webhook.Result{Class: webhook.ClassCanceled}})
					continue
				}
				l.yield()
				l.sem <- struct{}{}
				res := l.r.send(*ln.target.Load(), j, send)
				<-l.sem
				l.results.put(res)
			}
		})
	}
	return ln
}

// yield holds a send back while the till is busy (store.DB.Busy): sends
// then go out at BusyRate at most, so invoices and payments get the CPU
// a full-speed drain would take. The bookkeeping already gives way in
// the store (WithLowPriority); this gives way on the CPU.
func (l *loop) yield() {
	if l.busy != nil && l.r.db.Busy() {
		_ = l.busy.Wait(l.sendCtx)
	}
}

func (l *loop) outstanding() int {
	n := 0
	for _, ln := range l.lanes {
		n += ln.out
	}
	return n
}

// resultsWanted is how many waiting results are worth waking the loop
// for. One while results must be seen as they come: the first of a batch
// starts its AckDelay, a FIFO lane's head or an offline probe is recorded
// at once, a stopping lane goes once its last job is back. Otherwise as
// many as would fill the batch or let a lane be refilled (room), whichever
// comes first; the timer (nextWake) wakes the loop for the AckDelay.
// Results of all lanes count alike, so a lane's refill is never late.
func (l *loop) resultsWanted(pending int) int {
	if pending == 0 || l.offline {
		return 1
	}
	n := l.r.opts.BatchSize - pending
	half := (l.r.opts.PerEndpoint + l.r.opts.Prefetch) / 2
	for _, ln := range l.lanes {
		switch {
		case ln.out == 0:
		case ln.stopped.Load() || ln.disabling || ln.fifo():
			return 1
		case ln.out > half:
			// room is claimed once out is down to half the queue.
			n = min(n, ln.out-half)
		}
	}
	return max(n, 1)
}

// collect appends the results waiting in the mailbox to pending, up to
// limit in all, so they commit together.
func (l *loop) collect(pending []result, limit int) []result {
	n := len(pending)
	pending = l.results.take(pending, limit-n)
	if n == 0 && len(pending) > 0 {
		l.firstPending = l.r.opts.Now()
	}
	for _, res := range pending[n:] {
		l.free(res)
	}
	return pending
}

func (l *loop) free(res result) {
	l.lanes[res.endpoint].out--
}

// recorded lets go of results whose batch committed, and of stopped
// lanes with nothing outstanding.
func (l *loop) recorded(pending []result) {
	for _, res := range pending {
		ln := l.lanes[res.endpoint]
		delete(ln.held, res.delivery)
		if res.Class == webhook.ClassCanceled {
			// Handed back unsent: due again, most likely behind the
			// lane's cursor.
			ln.after = cursor{}
		}
	}
	for id, ln := range l.lanes {
		if ln.stopped.Load() && ln.out == 0 && len(ln.held) == 0 {
			delete(l.lanes, id)
		}
	}
}

// step claims more work for every lane with room and queues it, and
// acknowledges pending results in one transaction once they are due to
// be recorded (see ackDue). The claim reads committed rows on the read
// pool (see claim), so the lanes' workers are already sending what it
// found while the acknowledging batch waits for its commit (with
// synchronous=FULL, an fsync). It returns errWait when it recorded
// nothing: the results wait for a fuller batch.
func (l *loop) step(ctx context.Context, pending []result) error {
	now := l.r.opts.Now()
	want := false
	for _, id := range l.order {
		if l.room(l.lanes[id], now) > 0 {
			want = true
			break
		}
	}
	ack := l.ackDue(pending, now)
	if !want && !ack {
		return errWait
	}
	if ack {
		// Before the claim: a store found offline claims probes.
		l.judgeOffline(pending, now)
	}
	// Store calls here are bounded by the busy timeout; a context without
	// cancellation also spares mattn a goroutine per statement.
	ctx = context.WithoutCancel(ctx)
	if want {
		claimed, err := l.claim(ctx, now)
		if err != nil {
			return err
		}
		l.queue(claimed)
	}
	if !ack {
		return errWait
	}
	// The API's writes go first; this bookkeeping joins a later batch.
	err := store.InTx(store.WithLowPriority(ctx), l.r.db.Write, func(tx *sql.Tx) error {
		return l.ack(ctx, tx, pending)
	})
	if err != nil {
		return err
	}
	l.recorded(pending)
	return nil
}

// ackDelay is how long results may wait for their record: AckDelay, a
// quarter of it while the till is busy.
func (l *loop) ackDelay() time.Duration {
	if l.r.db.Busy() {
		return l.r.opts.AckDelay / 4
	}
	return l.r.opts.AckDelay
}

// ackDue reports whether pending results are to be recorded now: a full
// batch, one that has waited AckDelay, or a lane that claims nothing
// more until its results are recorded (a FIFO lane's head, an offline
// store's probe). Otherwise they wait, so a commit (and its fsync, and
// the fixed cost of a transaction) carries as many results as it can.
func (l *loop) ackDue(pending []result, now time.Time) bool {
	if len(pending) == 0 {
		return false
	}
	if len(pending) >= l.r.opts.BatchSize || !now.Before(l.firstPending.Add(l.ackDelay())) {
		return true
	}
	for _, id := range l.order {
		if ln := l.lanes[id]; (l.offline || ln.fifo()) && ln.out == 0 && len(ln.held) > 0 {
			return true
		}
	}
	return false
}

// queue hands claimed jobs to their lanes' workers, holding their rows
// until their results are recorded.
func (l *loop) queue(claimed map[string][]job) {
	for id, js := range claimed {
		ln := l.lanes[id]
		ln.gen++
		for _, j := range js {
			j.gen = ln.gen
			ln.held[j.delivery] = struct{}{}
			ln.jobs <- j // never blocks: room() keeps out within the queue's capacity
			ln.out++
		}
	}
}

// room is how many deliveries to claim for ln now.
func (l *loop) room(ln *lane, now time.Time) int {
	if now.Before(ln.nextClaim) || ln.stopped.Load() || ln.disabling {
		return 0
	}
	if l.offline || ln.fifo() {
		// Offline: one probe at a time. FIFO: the next delivery waits
		// until the previous one's result is recorded.
		if ln.out > 0 || len(ln.held) > 0 {
			return 0
		}
		return 1
	}
	// Refill once half empty: fewer, larger claims and commits.
	size := l.r.opts.PerEndpoint + l.r.opts.Prefetch
	if free := size - ln.out; ln.out == 0 || free >= (size+1)/2 {
		return free
	}
	return 0
}

// judgeOffline updates the offline evidence with a batch of results: the
// store is offline when every endpoint heard from within OfflineWindow
// last failed to resolve or connect.
func (l *loop) judgeOffline(pending []result, now time.Time) {
	if len(pending) == 0 {
		return
	}
	for _, res := range pending {
		if res.Class == webhook.ClassCanceled {
			continue
		}
		if ln := l.lanes[res.endpoint]; ln != nil {
			ln.netFail, ln.lastResult = res.Network, now
		}
	}
	offline, heard := true, false
	for _, id := range l.order {
		ln := l.lanes[id]
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
		// What is queued would only fail too: hand it back unsent.
		for _, ln := range l.lanes {
			ln.flushed.Store(ln.gen)
		}
	case !offline && l.offline:
		l.r.log.Info().Msg("an endpoint answered; store online, resuming delivery")
		for _, ln := range l.lanes {
			ln.nextClaim = now
		}
	}
	l.offline = offline
}

// nextWake returns how long the loop may sleep.
func (l *loop) nextWake(pending int) time.Duration {
	now := l.r.opts.Now()
	next := now.Add(l.r.opts.Poll)
	for _, id := range l.order {
		ln := l.lanes[id]
		if ln.nextClaim.Before(next) && l.room(ln, ln.nextClaim) > 0 {
			next = ln.nextClaim
		}
	}
	if l.retention.Before(next) {
		next = l.retention
	}
	if pending > 0 && l.firstPending.Add(l.ackDelay()).Before(next) {
		next = l.firstPending.Add(l.ackDelay())
	}
	if soon := now.Add(l.r.opts.AckDelay / 4); pending > 0 && soon.Before(next) {
		// Results no longer wake the loop one by one (resultsWanted):
		// look again at least four times per AckDelay, so a till that
		// turns busy meanwhile still gets its quarter (ackDelay).
		next = soon
	}
	return max(next.Sub(now), 0)
}

// reload refreshes the lanes from the active endpoints when they changed,
// and every 30 s or when a rotated-out secret stops signing.
func (l *loop) reload(ctx context.Context) error {
	now := l.r.opts.Now()
	v := l.r.endpoints.Version()
	if v == l.version && now.Before(l.reloadAt) {
		return nil
	}
	ts, err := l.r.endpoints.Targets(ctx)
	if err != nil && ts == nil {
		return err
	}
	if err != nil {
		// Some endpoints cannot be used; the others go on.
		l.r.log.Error().Err(err).Msg("relay: skipping endpoints that cannot be loaded")
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
		if ln := l.lanes[t.ID]; ln != nil && !ln.stopped.Load() {
			ln.target.Store(&t)
			ln.retune(&t, l.sendCtx)
			ln.failingSince, ln.alerted = t.FailingSince, t.Alerted
			continue
		}
		if old := l.lanes[t.ID]; old != nil && (old.out > 0 || len(old.held) > 0) {
			// Disabled and re-enabled while its last jobs return: wait
			// for them before starting a new lane under the same id.
			l.order = l.order[:len(l.order)-1]
			l.reloadAt = now.Add(l.r.opts.Poll)
			continue
		}
		l.lanes[t.ID] = l.startLane(t, now)
	}
	for id, ln := range l.lanes {
		if seen[id] {
			continue
		}
		// Disabled or deleted: its queued jobs come back canceled and are
		// let go; the lane goes once nothing is outstanding.
		ln.stop()
		if ln.out == 0 && len(ln.held) == 0 {
			delete(l.lanes, id)
		}
	}
	return nil
}

// storeError logs a failed store operation, rate-limited, and backs off a
// little so a broken store is not spun on.
func (l *loop) storeError(err error) {
	l.failures++
	if l.failures == 1 || l.failures%100 == 0 {
		l.r.log.Error().Err(err).Int("consecutive_errors", l.failures).Msg("relay: store operation failed; retrying")
	}
	time.Sleep(min(time.Duration(l.failures)*10*time.Millisecond, time.Second))
}

func (l *loop) storeOK() {
	if l.failures > 0 {
		l.r.log.Info().Int("consecutive_errors", l.failures).Msg("relay: store recovered")
		l.failures = 0
	}
}

// body builds the body of attempt j.n of an event whose data is data.
// max_attempts is the number the automatic attempts end at: the budget
// counted from the delivery's budget_base, so after a recover or a manual
// attempt both numbers keep growing.
func (r *Relay) body(j *job, data []byte) {
	e := r.envelope(j)
	j.body = webhook.AppendBody(make([]byte, 0, len(data)+bodyRoom), &e, data)
}

// envelope is j's body's envelope.
func (r *Relay) envelope(j *job) webhook.Envelope {
	return webhook.Envelope{
		Event: j.eventType, EntryID: j.eventID, Time: j.created, Attempt: j.n,
		MaxAttempts: j.base + r.opts.MaxAttempts, LastError: j.lastError, StoreID: r.endpoints.StoreID(),
	}
}

// send performs one attempt of j to t through send (a lane worker's
// webhook.Worker, or the sender for a manual retry).
func (r *Relay) send(t webhook.Target, j job, send func(webhook.Target, webhook.Message) webhook.Result) (res result) {
	res.job = j
	res.started = r.opts.Now() // also the signing time
	defer func() {
		if p := recover(); p != nil {
			r.log.Error().Interface("panic", p).Int64(logkey.DeliveryID, j.delivery).Msg("relay: send panicked")
			res.Result = webhook.Result{Class: webhook.ClassIO, Err: fmt.Sprint("internal error: ", p)}
		}
	}()
	res.Result = send(t, webhook.Message{ID: j.eventID, Body: j.body, Time: res.started})
	return res
}
