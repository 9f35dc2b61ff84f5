package zvt

import (
	"context"
	"sync"
	"time"

	"github.com/posgate/posgate/device"
)

// Run owns the port until ctx ends and returns nil on cancellation. While
// the terminal is idle it sends Status Enquiry 05 01 every
// Options.StatusEvery (PA00P015 §2.56 asks for one every minute, so that
// the terminal can run time-controlled events such as an automatic
// end-of-day); the answer is kept for LastStatus. When ctx ends, a
// registered terminal is sent Log-Off 06 02 (§2.24) before the port closes.
func (c *Client) Run(ctx context.Context) error {
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		runErr = c.link.Run(lctx)
	}()
	if c.opts.StatusEvery > 0 || c.opts.DiagnosisEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.pollIdle(ctx)
		}()
	}
	<-ctx.Done()
	c.logOffOnShutdown(lctx)
	stop()
	wg.Wait()
	return runErr
}

// logOffOnShutdown sends Log-Off if posgate registered, bounded by T3.
func (c *Client) logOffOnShutdown(ctx context.Context) {
	if online, _ := c.link.State(); !online {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.T3)
	defer cancel()
	err := c.link.Do(ctx, func(ctx context.Context, p device.Port) error {
		if !c.registered {
			return nil
		}
		tr := c.transport(p)
		if err := tr.Send(ctx, LogOff()); err != nil {
			return err
		}
		_, err := c.recv(ctx, tr, time.Now().Add(c.opts.T3))
		c.registered = false
		return err
	})
	if err != nil {
		// Often the line closes at the same moment (a simulator stopping
		// with the daemon); the terminal times the registration out anyway.
		c.log.Info().Err(err).Msg("zvt log-off on shutdown not acknowledged")
		return
	}
	c.log.Info().Msg("zvt logged off")
}

// pollIdle sends a Status Enquiry whenever the terminal has been idle for
// StatusEvery, and a Diagnosis when the terminal asked for one or
// DiagnosisEvery has passed.
func (c *Client) pollIdle(ctx context.Context) {
	every := 5 * time.Second // how often it looks
	if c.opts.StatusEvery > 0 {
		every = min(every, c.opts.StatusEvery)
	}
	if c.opts.DiagnosisEvery > 0 {
		every = min(every, c.opts.DiagnosisEvery)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.smu.Lock()
		idle := time.Since(c.lastJobEnd) >= min(every, time.Second)
		due := c.opts.StatusEvery > 0 && time.Since(c.lastJobEnd) >= c.opts.StatusEvery && time.Since(c.statusAt) >= c.opts.StatusEvery
		diag := c.needDiag && time.Since(c.diagAt) >= max(every, time.Minute) ||
			c.opts.DiagnosisEvery > 0 && time.Since(c.diagAt) >= c.opts.DiagnosisEvery
		c.smu.Unlock()
		if online, _ := c.link.State(); !online || !idle || !due && !diag {
			continue
		}
		c.mu.Lock()
		busy := c.active != nil
		c.mu.Unlock()
		if busy {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, c.opts.T3+c.opts.T4)
		if diag {
			if _, err := c.Diagnosis(sctx); err != nil {
				c.log.Warn().Err(err).Msg("zvt diagnosis failed")
			}
		} else if _, err := c.Status(sctx); err != nil {
			c.log.Warn().Err(err).Msg("zvt idle status enquiry failed")
		}
		cancel()
	}
}

// LastStatus returns the answer to the last Status Enquiry (the idle poll's
// or a caller's), when it came, and the error if it failed. The zero time
// means none was sent yet.
func (c *Client) LastStatus() (device.TerminalStatus, time.Time, error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.status, c.statusAt, c.statusErr
}
