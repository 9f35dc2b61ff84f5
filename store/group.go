package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by InTx once the store is closed.
var ErrClosed = errors.New("store is closed")

// ErrBatchAborted is returned to a caller whose transaction had succeeded
// but shared its commit with a caller whose work made SQLite abort the
// whole transaction (an I/O or disk-full error mid-statement, an
// interrupted statement, or a caller that ended the transaction itself).
// Nothing of it was written; retrying is safe.
var ErrBatchAborted = errors.New("group commit aborted by another transaction in its batch")

// Group-commit defaults; see Options.
const (
	defaultMaxBatch     = 64
	defaultMaxBatchTime = 10 * time.Millisecond
	defaultLowWait      = 20 * time.Millisecond
)

type priorityKey struct{}

// WithLowPriority marks the transactions InTx runs with ctx as background
// bookkeeping (the outbox relay): while other writes wait, a low-priority
// one joins a batch only after it has waited Options.LowPriorityWait, so
// the API's writes go first and the bookkeeping is never starved.
func WithLowPriority(ctx context.Context) context.Context {
	return context.WithValue(ctx, priorityKey{}, true)
}

type queuedKey struct{}

// WithQueued makes InTx call fn once the transaction it runs with ctx is
// queued for the writer (or, without group commit, just before it
// begins): transactions queued in an order run and commit in that order.
// fiscal uses it to hand its invoices to the writer in number order.
func WithQueued(ctx context.Context, fn func()) context.Context {
	return context.WithValue(ctx, queuedKey{}, fn)
}

func queuedHook(ctx context.Context) func() {
	fn, _ := ctx.Value(queuedKey{}).(func())
	return fn
}

func isLowPriority(ctx context.Context) bool {
	low, _ := ctx.Value(priorityKey{}).(bool)
	return low
}

// writers maps an open store's writer *sql.DB to its group committer, so
// the package-level InTx(ctx, db.Write, fn) batches too.
var writers sync.Map

// Request states.
const (
	queued int32 = iota
	taken
	abandoned
)

type request struct {
	ctx    context.Context
	fn     func(*sql.Tx) error
	low    bool
	queued time.Time
	state  atomic.Int32

	err      error
	panicked bool
	panicVal any
	done     chan struct{}
}

func (r *request) answer(err error) {
	r.err = err
	close(r.done)
}

// committer is the writer goroutine's state: it batches the transactions
// of many callers into one SQLite transaction, each in its own SAVEPOINT,
// and answers them after the one COMMIT (one fsync) returned.
type committer struct {
	db           *sql.DB
	maxBatch     int
	maxBatchTime time.Duration
	lowWait      time.Duration

	// ckpt runs the WAL checkpoints off the writer's path; nil when it
	// could not be opened (the writer then checkpoints as SQLite does by
	// default).
	ckpt *checkpointer

	mu     sync.Mutex
	high   []*request
	low    []*request
	closed bool
	wake   chan struct{}
	done   chan struct{}

	// commitHook, when set, replaces tx.Commit: tests inject a commit
	// failure with it.
	commitHook atomic.Pointer[func(*sql.Tx) error]
	// lastCommit is how long the last COMMIT took; only the writer
	// goroutine uses it.
	lastCommit time.Duration
	// Counters, for tests and the benchmark.
	batches atomic.Int64
	txs     atomic.Int64

	// fg counts foreground (not low-priority) callers in do; fgEnd is
	// when the last one left, in Unix nanoseconds. See DB.Busy.
	fg    atomic.Int64
	fgEnd atomic.Int64
}

func newCommitter(db *sql.DB, opts Options) *committer {
	c := &committer{
		db:           db,
		maxBatch:     opts.MaxBatch,
		maxBatchTime: opts.MaxBatchTime,
		lowWait:      opts.LowPriorityWait,
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
	}
	if c.maxBatch <= 0 {
		c.maxBatch = defaultMaxBatch
	}
	if c.maxBatchTime <= 0 {
		c.maxBatchTime = defaultMaxBatchTime
	}
	if c.lowWait <= 0 {
		c.lowWait = defaultLowWait
	}
	// Each caller's savepoint makes SQLite keep the pages it changes in a
	// statement journal, a temporary file once it passes 64 KiB: a dozen
	// write syscalls per caller on the writer's path. In memory they are
	// a few pages per caller, freed at each RELEASE. A failure here costs
	// only speed.
	_, _ = db.Exec("PRAGMA temp_store = MEMORY")
	if ck, err := newCheckpointer(db, opts); err == nil {
		c.ckpt = ck
	}
	go c.run()
	return c
}

// do queues fn and waits for its outcome. A caller whose ctx ends while
// fn is still queued leaves with the ctx's error and fn never runs; once
// fn has started, the caller waits for the commit, so an error always
// means nothing was written.
func (c *committer) do(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		if fn := queuedHook(ctx); fn != nil {
			fn()
		}
		return fmt.Errorf("begin tx: %w", err)
	}
	r := &request{ctx: ctx, fn: fn, low: isLowPriority(ctx), queued: time.Now(), done: make(chan struct{})}
	if !r.low {
		c.fg.Add(1)
		defer func() {
			c.fgEnd.Store(time.Now().UnixNano())
			c.fg.Add(-1)
		}()
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		if fn := queuedHook(ctx); fn != nil {
			fn()
		}
		return fmt.Errorf("begin tx: %w", ErrClosed)
	}
	if r.low {
		c.low = append(c.low, r)
	} else {
		c.high = append(c.high, r)
	}
	c.mu.Unlock()
	if fn := queuedHook(ctx); fn != nil {
		fn()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return fmt.Errorf("begin tx: %w", ctx.Err())
		}
		<-r.done
	}
	if r.panicked {
		panic(r.panicVal)
	}
	return r.err
}

// close stops taking work, lets the writer finish what is queued and
// waits for it to exit.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.done
	if c.ckpt != nil {
		_ = c.ckpt.close()
	}
}

func (c *committer) run() {
	defer close(c.done)
	for {
		batch, ok := c.take()
		if !ok {
			return
		}
		if c.ckpt != nil {
			c.ckpt.catchUp(c.db)
		}
		c.runBatch(batch)
	}
}

// take waits for work and returns the next batch: whatever is queued,
// never waiting to gather more. High-priority requests come first; a
// low-priority one joins them only once it has waited lowWait, and when
// nothing else waits the low ones form the batch.
func (c *committer) take() ([]*request, bool) {
	for {
		c.mu.Lock()
		c.high = dropAbandoned(c.high)
		c.low = dropAbandoned(c.low)
		if len(c.high) > 0 || len(c.low) > 0 {
			var batch []*request
			n := min(len(c.high), c.maxBatch)
			batch = append(batch, c.high[:n]...)
			c.high = c.high[n:]
			lows := 0
			for lows < len(c.low) && len(batch) < c.maxBatch {
				if n > 0 && time.Since(c.low[lows].queued) < c.lowWait {
					break
				}
				batch = append(batch, c.low[lows])
				lows++
			}
			c.low = c.low[lows:]
			c.mu.Unlock()
			if len(batch) > 0 {
				return batch, true
			}
			continue
		}
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return nil, false
		}
		<-c.wake
	}
}

// highWaiting reports whether a foreground request is queued.
func (c *committer) highWaiting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.high) > 0
}

func dropAbandoned(q []*request) []*request {
	out := q[:0]
	for _, r := range q {
		if r.state.Load() != abandoned {
			out = append(out, r)
		}
	}
	clear(q[len(out):])
	return out
}

// requeue puts requests the batch had no time for back at the head of
// their queues.
func (c *committer) requeue(rs []*request) {
	var high, low []*request
	for _, r := range rs {
		if r.low {
			low = append(low, r)
		} else {
			high = append(high, r)
		}
	}
	c.mu.Lock()
	c.high = append(high, c.high...)
	c.low = append(low, c.low...)
	c.mu.Unlock()
}

const savepoint = "posgate_group"

// runBatch runs every request of batch in its own savepoint of one
// transaction and commits once. A request that fails or panics is rolled
// back to its savepoint and gets its own error; the others get the
// commit's outcome. Every request is answered after the commit.
func (c *committer) runBatch(batch []*request) {
	// The transaction belongs to the batch, not to any caller: a caller's
	// cancelled ctx must not roll back the others' work. Lock waits are
	// bounded by the busy timeout.
	tx, err := c.db.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range batch {
			if r.state.CompareAndSwap(queued, taken) {
				r.answer(fmt.Errorf("begin tx: %w", err))
			}
		}
		return
	}
	c.batches.Add(1)
	start := time.Now()
	// ok succeeded and wait for the commit. failed are answered after it
	// too: their outcome may rest on rows of others in the batch (a unique
	// key, a busy terminal), which are not real before the commit.
	var ok, failed []*request
	defer func() {
		for _, r := range failed {
			close(r.done)
		}
	}()
	// A request left to the next batch waits for this batch's commit and
	// then its own: cutting pays off only once the batch has overrun its
	// bound by more than a commit. With a 5 ms fsync a commit takes about
	// 10 ms, and a batch descheduled for a moment on a busy box cut its
	// last callers off at 10 ms, to wait 10 ms more.
	limit := c.maxBatchTime + c.lastCommit
	for i, r := range batch {
		if i > 0 && time.Since(start) > limit {
			c.requeue(batch[i:])
			break
		}
		if i > 0 && r.low && c.highWaiting() {
			// A till's write arrived while this batch runs the relay's
			// bookkeeping: commit what ran, and let the till's go next.
			c.requeue(batch[i:])
			break
		}
		if !r.state.CompareAndSwap(queued, taken) {
			continue
		}
		if err := r.ctx.Err(); err != nil {
			r.answer(fmt.Errorf("begin tx: %w", err))
			continue
		}
		c.txs.Add(1)
		if len(batch) == 1 {
			// Alone in its batch, r needs no savepoint (SAVEPOINT and
			// RELEASE cost the writer about 70 µs of CPU): on its error
			// or panic the whole transaction rolls back.
			runAlone(tx, r)
			if r.err != nil || r.panicked {
				_ = tx.Rollback()
				failed = append(failed, r)
				return
			}
			ok = append(ok, r)
			break
		}
		if err := runOne(tx, r); err != nil {
			// SQLite rolled the whole transaction back, or fn ended it:
			// nothing of this batch can be committed.
			_ = tx.Rollback()
			if r.err == nil && !r.panicked {
				r.err = fmt.Errorf("group commit: %w", err)
			}
			failed = append(failed, r)
			for _, o := range ok {
				o.answer(fmt.Errorf("%w: %w", ErrBatchAborted, err))
			}
			c.requeue(batch[i+1:])
			return
		}
		if r.err != nil || r.panicked {
			failed = append(failed, r)
			continue
		}
		ok = append(ok, r)
	}
	commit := (*sql.Tx).Commit
	if h := c.commitHook.Load(); h != nil {
		commit = *h
	}
	t0 := time.Now()
	err = commit(tx)
	c.lastCommit = time.Since(t0)
	if err != nil {
		_ = tx.Rollback()
		err = fmt.Errorf("commit tx: %w", err)
		for _, r := range ok {
			r.answer(err)
		}
		return
	}
	for _, r := range ok {
		r.answer(nil)
	}
	if c.ckpt != nil {
		c.ckpt.committed()
	}
	// The callers just answered are queued on this goroutine's P, and
	// the writer would go straight on to the next batch: while both
	// cores sign, they waited until the scheduler preempted the writer
	// or took its P during a system call, up to 30–40 ms (at 16 callers
	// and 1,500 invoices/s the p99 was that wait). Yielding lets them
	// run first.
	if len(ok) > 0 {
		runtime.Gosched()
	}
}

// runAlone runs r.fn, recording its error or panic in r.
func runAlone(tx *sql.Tx, r *request) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked, r.panicVal = true, p
		}
	}()
	r.err = r.fn(tx)
}

// runOne runs r.fn inside a savepoint, recording its error or panic in r
// and rolling back to the savepoint on either. It returns an error only
// when the savepoint itself failed, which means the transaction is gone.
func runOne(tx *sql.Tx, r *request) error {
	if _, err := tx.Exec("SAVEPOINT " + savepoint); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				r.panicked, r.panicVal = true, p
			}
		}()
		r.err = r.fn(tx)
	}()
	if r.err != nil || r.panicked {
		if _, err := tx.Exec("ROLLBACK TO " + savepoint); err != nil {
			return fmt.Errorf("rollback to savepoint: %w", err)
		}
	}
	if _, err := tx.Exec("RELEASE " + savepoint); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// BusyLinger is how long DB.Busy stays true after the last foreground
// write: a till's request goes on working (the HTTP answer, the terminal's
// first byte) just after its commit.
const BusyLinger = 5 * time.Millisecond

// Active marks foreground work outside the store (an API request that
// has not reached its write yet, or is past it) until done is called:
// Busy is true meanwhile and for BusyLinger after.
func (db *DB) Active() (done func()) {
	c := db.group
	if c == nil {
		return func() {}
	}
	c.fg.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			c.fgEnd.Store(time.Now().UnixNano())
			c.fg.Add(-1)
		})
	}
}

// Busy reports whether a foreground write (an InTx without
// WithLowPriority: the API's) is queued or running, or other foreground
// work is marked (Active), or either ended within BusyLinger. The outbox relay slows its sends while it is true, so a
// backlog drain leaves the CPU to the till. Always false with
// Options.SerialCommit.
func (db *DB) Busy() bool {
	c := db.group
	if c == nil {
		return false
	}
	if c.fg.Load() > 0 {
		return true
	}
	end := c.fgEnd.Load()
	return end != 0 && time.Since(time.Unix(0, end)) < BusyLinger
}
