package device

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/posgate/posgate/logkey"
	"github.com/rs/zerolog"
)

// LinkOptions configures a Link. ID and Spec are required.
type LinkOptions struct {
	ID       string      // device id, e.g. "t1"
	Spec     string      // port spec, see Open
	Port     PortOptions // serial settings and TCP defaults
	Log      zerolog.Logger
	Notifier *Notifier // receives Connected/Disconnected; nil drops them
	// BackoffMin and BackoffMax bound the jittered exponential wait between
	// reconnect attempts; defaults 200 ms and 10 s.
	BackoffMin, BackoffMax time.Duration
	// ConnectPerJob opens the port for each Do and closes it afterwards.
	// Use it for TCP terminals that drop idle sockets after a second or two
	// (research/payment-protocols.md §5, Portalum#8).
	ConnectPerJob bool
	// Open replaces device.Open, for tests.
	Open func(ctx context.Context, spec string, opts PortOptions) (Port, error)
}

// Link owns one port: its Run goroutine opens it, is the only one to write
// to it, runs the exchanges handed to Do one at a time, and reopens it with
// backoff after the line is lost. A single pump goroutine is the only
// reader of the underlying port, so an unplug is seen even while idle.
type Link struct {
	opts LinkOptions
	jobs chan job
	done chan struct{} // closed when Run returns

	mu      sync.Mutex // guards online, lastErr
	online  bool
	lastErr error
}

type job struct {
	ctx   context.Context
	fn    func(ctx context.Context, p Port) error
	reply chan error
}

// NewLink returns a Link; call Run to start it.
func NewLink(opts LinkOptions) *Link {
	if opts.ID == "" || opts.Spec == "" {
		panic("device: NewLink needs ID and Spec")
	}
	if opts.BackoffMin == 0 {
		opts.BackoffMin = 200 * time.Millisecond
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = 10 * time.Second
	}
	if opts.Open == nil {
		opts.Open = Open
	}
	opts.Log = opts.Log.With().Str(logkey.DeviceID, opts.ID).Str(logkey.Port, opts.Spec).Logger()
	return &Link{opts: opts, jobs: make(chan job), done: make(chan struct{})}
}

// ID returns the device id.
func (l *Link) ID() string { return l.opts.ID }

// State reports whether the port is open, and the last error that closed
// it or kept it from opening.
func (l *Link) State() (online bool, lastErr error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.online, l.lastErr
}

// Do runs fn on the goroutine that owns the port and returns its error.
// Exchanges are serialized. While the link is reconnecting Do fails at once
// with an error wrapping ErrOffline; if the line is lost during fn, the
// error wraps ErrDisconnected as well as fn's own error. fn must honour ctx
// and must not keep p after it returns.
func (l *Link) Do(ctx context.Context, fn func(ctx context.Context, p Port) error) error {
	j := job{ctx: ctx, fn: fn, reply: make(chan error, 1)}
	select {
	case l.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return fmt.Errorf("device %s: %w: link stopped", l.opts.ID, ErrOffline)
	}
	return <-j.reply
}

// Run owns the port until ctx is cancelled, then closes it and returns nil.
func (l *Link) Run(ctx context.Context) error {
	defer close(l.done)
	defer l.setState(false, nil, false)
	if l.opts.ConnectPerJob {
		return l.runPerJob(ctx)
	}
	backoff := l.opts.BackoffMin
	failures := 0
	for {
		p, err := l.opts.Open(ctx, l.opts.Spec, l.opts.Port)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			l.setState(false, err, true)
			if failures == 1 || failures%20 == 0 {
				l.opts.Log.Warn().Err(err).Int("consecutive_errors", failures).Dur("backoff", backoff).Msg("device open failed")
			}
			if !l.wait(ctx, jitter(backoff)) {
				return nil
			}
			backoff = min(backoff*2, l.opts.BackoffMax)
			continue
		}
		backoff = l.opts.BackoffMin
		l.opts.Log.Info().Int("consecutive_errors", failures).Msg("device connected")
		failures = 0
		l.setState(true, nil, true)
		lost := l.serve(ctx, p)
		if ctx.Err() != nil {
			return nil
		}
		l.opts.Log.Warn().Err(lost).Msg("device line lost")
		l.setState(false, lost, true)
	}
}

// wait sleeps d while failing jobs with ErrOffline. It reports false when
// ctx ends.
func (l *Link) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case j := <-l.jobs:
			_, last := l.State()
			j.reply <- fmt.Errorf("device %s: %w: %w", l.opts.ID, ErrOffline, last)
		}
	}
}

// serve runs jobs on p until the line is lost (returning why) or ctx ends
// (returning nil). It closes p before returning.
func (l *Link) serve(ctx context.Context, p Port) error {
	pp := newPumpPort(p)
	stop := context.AfterFunc(ctx, func() { p.Close() })
	defer func() {
		stop()
		pp.shutdown()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-pp.dead:
			return pp.err
		case b := <-pp.data:
			// Nothing is running, so nobody expects these bytes.
			l.opts.Log.Debug().Int("bytes", len(b)).Msg("device sent unsolicited bytes")
		case j := <-l.jobs:
			err := l.runJob(j, pp)
			j.reply <- err
			if pp.isDead() {
				return pp.err
			}
			pp.discard()
		}
	}
}

func (l *Link) runJob(j job, pp *pumpPort) (err error) {
	defer func() {
		if r := recover(); r != nil {
			l.opts.Log.Error().Interface("panic", r).Msg("device job panicked")
			err = fmt.Errorf("device %s: job panicked: %v", l.opts.ID, r)
		}
	}()
	err = j.fn(j.ctx, pp)
	if err != nil && pp.isDead() && !errors.Is(err, ErrDisconnected) {
		err = fmt.Errorf("device %s: %w: %w", l.opts.ID, ErrDisconnected, err)
	}
	return err
}

func (l *Link) runPerJob(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-l.jobs:
			p, err := l.opts.Open(j.ctx, l.opts.Spec, l.opts.Port)
			if err != nil {
				l.setState(false, err, true)
				j.reply <- fmt.Errorf("device %s: %w: %w", l.opts.ID, ErrOffline, err)
				continue
			}
			l.setState(true, nil, true)
			pp := newPumpPort(p)
			stop := context.AfterFunc(ctx, func() { p.Close() })
			err = l.runJob(j, pp)
			lost := pp.isDead()
			stop()
			pp.shutdown()
			j.reply <- err
			if lost {
				l.setState(false, pp.err, true)
			}
		}
	}
}

// setState records the state and publishes a change when publish is set
// and the online flag flipped.
func (l *Link) setState(online bool, err error, publish bool) {
	l.mu.Lock()
	changed := l.online != online
	l.online = online
	if err != nil {
		l.lastErr = err
	}
	l.mu.Unlock()
	if !publish || !changed {
		return
	}
	kind := Disconnected
	if online {
		kind = Connected
	}
	l.opts.Notifier.Publish(StateChange{DeviceID: l.opts.ID, Kind: kind, Port: l.opts.Spec, Err: err, At: time.Now().UTC()})
}

// jitter spreads d over [d/2, d) so many devices do not reconnect in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
