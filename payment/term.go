package payment

import (
	"fmt"
	"sync"
)

// term is one terminal's state, shared by its session loop and the
// callers of Service.
type term struct {
	cfg  Terminal
	jobs chan job // cap 1: only the holder of the reservation sends

	mu       sync.Mutex // guards the fields below
	ready    bool       // registered and reconciled
	reserved bool       // a job was handed over or is being
	current  string     // payment id in the session
	msg      string     // what the terminal shows, for current
	lastErr  error
	software string
	cancelID string      // the payment Cancel was asked for
	cancel   chan string // Cancel's requests for current; cap 1
	// seen tells the loop the terminal sent something for the running
	// payment, so it holds master rights and an Abort can reach it.
	seen chan struct{}
}

type job struct {
	payment  *record        // a payment just created, still pending
	eod      chan eodReply  // set for an end-of-day
	readCard chan readReply // set for a Read Card
}

type eodReply struct {
	res EndOfDayResult
	err error
}

func newTerm(cfg Terminal) *term {
	return &term{cfg: cfg, jobs: make(chan job, 1), cancel: make(chan string, 1), seen: make(chan struct{}, 1)}
}

func (t *term) online() bool { return t.cfg.Online == nil || t.cfg.Online() }

// reserve claims the terminal for one job. An offline terminal is
// refused first, so nothing is recorded for it. The reservation, not the
// database, is what keeps a second payment off a busy terminal; the
// unique index on open sessions backs it up.
func (t *term) reserve() error {
	if !t.online() {
		return fmt.Errorf("%w: %s", ErrTerminalOffline, t.cfg.ID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.reserved && t.current != "":
		return fmt.Errorf("%w: payment %s is running on %s", ErrTerminalBusy, t.current, t.cfg.ID)
	case t.reserved:
		return fmt.Errorf("%w: %s", ErrTerminalBusy, t.cfg.ID)
	case !t.ready && t.lastErr != nil:
		return fmt.Errorf("%w: %s is not ready: %w", ErrTerminalOffline, t.cfg.ID, t.lastErr)
	case !t.ready:
		return fmt.Errorf("%w: %s is being registered or reconciled", ErrTerminalBusy, t.cfg.ID)
	}
	t.reserved = true
	return nil
}

func (t *term) release() {
	t.mu.Lock()
	t.reserved = false
	t.mu.Unlock()
}

// setReady records the outcome of a register-and-reconcile round.
func (t *term) setReady(ready bool, err error) {
	t.mu.Lock()
	t.ready, t.lastErr = ready, err
	t.mu.Unlock()
}

// start makes id the payment in the session and drops stale signals.
// It reports whether Cancel was asked for id before it started.
func (t *term) start(id string) (cancelled bool) {
	select {
	case <-t.cancel:
	default:
	}
	select {
	case <-t.seen:
	default:
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.current, t.msg = id, ""
	return t.cancelID == id
}

// end ends the job: the terminal is free again, unless ready is false
// (the session left a payment in doubt and must be reconciled first).
func (t *term) end(ready bool) {
	t.mu.Lock()
	t.current, t.msg, t.cancelID = "", "", ""
	t.ready = ready
	t.reserved = false
	t.mu.Unlock()
}

func (t *term) setMessage(text string) {
	t.mu.Lock()
	t.msg = text
	t.mu.Unlock()
	select {
	case t.seen <- struct{}{}:
	default:
	}
}

func (t *term) message(id string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current != id {
		return ""
	}
	return t.msg
}

// requestCancel asks the session loop to cancel id: before it starts,
// or, once running, with Abort.
func (t *term) requestCancel(id string) {
	t.mu.Lock()
	t.cancelID = id
	running := t.current == id
	t.mu.Unlock()
	if !running {
		return
	}
	select {
	case t.cancel <- id:
	default:
	}
}

func (t *term) state() TerminalState {
	st := TerminalState{ID: t.cfg.ID, Protocol: t.cfg.Protocol, Port: t.cfg.Port}
	online := t.online()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastErr != nil {
		st.LastError = t.lastErr.Error()
	}
	st.PaymentID, st.Software = t.current, t.software
	switch {
	case !online:
		st.State = "offline"
	case t.reserved || (!t.ready && t.lastErr == nil):
		st.State = "busy"
	case !t.ready:
		st.State = "error"
	default:
		st.State = "online"
	}
	return st
}
