package webhook

import (
	"context"
	"sync/atomic"
	"time"
)

// Worker sends attempts one at a time on behalf of one goroutine (a relay
// lane's worker), with Send's outcome for each, bounding each attempt by
// the sender's Timeout as Send does. Send makes a context and a timer for
// every attempt; a Worker keeps one pair from attempt to attempt (the
// timer re-armed before each, stopped after) until the timer fires or
// ctx ends: with Send, those two were about a tenth of a relay worker's
// allocations. A Worker is not safe for concurrent use; Close it when
// done.
type Worker struct {
	s      *Sender
	parent context.Context
	cur    *bound
}

// bound is a context with the timer that cancels it after the timeout.
type bound struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	fired  atomic.Bool
}

// NewWorker returns a Worker whose attempts run under ctx.
func (s *Sender) NewWorker(ctx context.Context) *Worker {
	return &Worker{s: s, parent: ctx}
}

// Send is Sender.Send(ctx, t, m) for the Worker's ctx.
func (w *Worker) Send(t Target, m Message) Result {
	if isBroker(&t) {
		return w.s.Send(w.parent, t, m)
	}
	start := time.Now()
	b := w.cur
	if b == nil || b.ctx.Err() != nil {
		b = &bound{}
		// The cause is what WithTimeout's context reports, so a timed
		// out attempt reads as Send's does (ClassTimeout).
		b.ctx, b.cancel = context.WithCancelCause(w.parent)
		b.timer = time.AfterFunc(w.s.opts.Timeout, func() {
			b.fired.Store(true)
			b.cancel(context.DeadlineExceeded)
		})
		w.cur = b
	} else {
		b.timer.Reset(w.s.opts.Timeout)
	}
	r := w.s.post(b.ctx, t, m, start)
	if !b.timer.Stop() {
		// It fired during the attempt or just after: the context is
		// done, or about to be; the next attempt takes a fresh one.
		w.cur = nil
		if b.fired.Load() && r.Class == ClassCanceled {
			r.Class, r.Err = ClassTimeout, context.DeadlineExceeded.Error()
		}
	}
	return r
}

// Close stops the Worker's timer and releases its context.
func (w *Worker) Close() {
	if b := w.cur; b != nil {
		b.timer.Stop()
		b.cancel(context.Canceled)
		w.cur = nil
	}
}
