package payment

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
)

// runTerminal is the one goroutine that owns t's sessions. It registers
// and reconciles, then runs jobs one at a time; a job that leaves a
// payment in doubt sends it back to reconcile before the next.
func (s *Service) runTerminal(ctx context.Context, t *term) {
	log := s.log.With().Str(logkey.DeviceID, t.cfg.ID).Logger()
	defer t.setReady(false, errStopped)
	backoff := s.opts.RetryMin
	failures := 0
	for ctx.Err() == nil {
		reconciled, err := s.prepare(ctx, t)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			t.setReady(false, err)
			if failures == 1 || failures%20 == 0 {
				log.Warn().Err(err).Int("consecutive_errors", failures).Dur("backoff", backoff).Msg("terminal not ready")
			}
			if !sleep(ctx, backoff/2+rand.N(backoff/2+1)) {
				return
			}
			backoff = min(backoff*2, s.opts.RetryMax)
			continue
		}
		if failures > 0 {
			log.Info().Int("consecutive_errors", failures).Msg("terminal ready")
		}
		failures, backoff = 0, s.opts.RetryMin
		t.setReady(true, nil)
		if reconciled != "" {
			s.changed(reconciled)
		}
		for doubt := false; !doubt; {
			select {
			case <-ctx.Done():
				return
			case j := <-t.jobs:
				if j.readCard != nil {
					var (
						res CardRead
						err error
					)
					res, doubt, err = s.readCard(ctx, t)
					j.readCard <- readReply{res, err}
					t.end(!doubt)
					continue
				}
				if j.eod != nil {
					var (
						res EndOfDayResult
						err error
					)
					res, doubt, err = s.endOfDay(ctx, t)
					j.eod <- eodReply{res, err}
					t.end(!doubt) // in doubt: reconciled by prepare before the next job
					continue
				}
				doubt = s.runPayment(ctx, t, j.payment)
				// Free the terminal before the final status is visible, so
				// a cashier who sees it can start the next payment.
				t.end(!doubt)
				s.changed(j.payment.ID)
			}
		}
	}
}

// prepare registers with the terminal and reconciles the payment left
// open on it, if any, and returns that payment's id.
func (s *Service) prepare(ctx context.Context, t *term) (string, error) {
	if err := t.cfg.Device.Register(ctx); err != nil {
		return "", fmt.Errorf("register %s: %w", t.cfg.ID, err)
	}
	// The software version is for GET /v1/devices only; a terminal that
	// does not answer a Status Enquiry still takes payments.
	if st, err := t.cfg.Device.Status(ctx); err == nil {
		t.mu.Lock()
		t.software = st.Software
		t.mu.Unlock()
	}
	// An end-of-day a crash or a lost line interrupted is resolved by
	// asking the terminal, never by sending it again.
	if err := s.reconcileEndOfDay(ctx, t); err != nil {
		return "", err
	}
	r, err := openOn(ctx, s.db.Read, t.cfg.ID)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return r.ID, s.reconcile(ctx, t, r)
}

// outcome is what a driver call returned.
type outcome struct {
	res device.TxResult
	err error
}

// runPayment runs the pending payment r on t and reports whether it
// ended in doubt (the terminal may have charged and posgate does not
// know).
func (s *Service) runPayment(ctx context.Context, t *term, r *record) (doubt bool) {
	id := r.ID
	log := s.log.With().Str(logkey.PaymentID, id).Str(logkey.DeviceID, t.cfg.ID).Logger()
	if t.start(id) {
		_, err := s.updateQuiet(ctx, id, func(tx *sql.Tx, r *record) ([]string, error) {
			if r.Status != StatusPending && r.Status != StatusInProgress {
				return nil, errUnchanged
			}
			now := s.now()
			r.Status, r.Open, r.EndedAt = StatusCancelled, false, &now
			r.ResultText = "cancelled before it reached the terminal"
			return []string{EventCancelled}, nil
		})
		if err != nil && !errors.Is(err, errUnchanged) {
			log.Error().Err(err).Msg("payment cancel not recorded")
			return true
		}
		return false
	}
	// Create recorded the payment in_progress, with its deadline, before
	// handing it over: no command reaches the terminal without a durable
	// record that it was sent, and nothing else is written first.
	timer := time.NewTimer(s.opts.Timeout)
	defer timer.Stop()
	done := make(chan outcome, 1)
	h := s.handler(t, id, false)
	go func() {
		var o outcome
		ch := device.Charge{Amount: r.Amount, Currency: r.Currency, Reference: r.ID}
		switch r.Type {
		case TypeSale:
			o.res, o.err = t.cfg.Device.Authorize(ctx, ch, h)
		case TypeRefund:
			if r.OriginalPaymentID != "" {
				var orig *record
				if orig, o.err = getRecord(ctx, s.db.Read, r.OriginalPaymentID); o.err != nil {
					break
				}
				if orig.Info != nil {
					ch.OriginalRef = orig.Info.Ref
				}
			}
			o.res, o.err = t.cfg.Device.Refund(ctx, ch, h)
		case TypeReversal:
			var orig *record
			if orig, o.err = getRecord(ctx, s.db.Read, r.OriginalPaymentID); o.err == nil {
				o.res, o.err = reverseOn(ctx, t.cfg.Device, orig, h)
			}
		case TypePreAuth, TypePreAuthCompletion, TypePreAuthReversal, TypePreAuthPartialReversal:
			o.res, o.err = s.runPreAuth(ctx, t, r, ch, h)
		}
		done <- o
	}()

	// Abort may only reach into a transaction the terminal has taken;
	// one asked for before its first message is sent again then.
	var (
		wg          sync.WaitGroup
		seen        bool
		abortWanted bool
		aborts      int
	)
	defer wg.Wait()
	abort := func(why string) {
		if aborts >= 3 {
			return
		}
		aborts++
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, cancel := context.WithTimeout(ctx, s.opts.AbortWait)
			defer cancel()
			if err := t.cfg.Device.Abort(actx); err != nil {
				log.Warn().Err(err).Str("why", why).Msg("terminal abort failed")
			} else {
				log.Info().Str("why", why).Msg("terminal abort sent")
			}
		}()
	}
	for {
		select {
		case o := <-done:
			return s.conclude(ctx, t, id, o)
		case <-t.seen:
			if !seen {
				seen = true
				if abortWanted {
					abort("repeat")
				}
			}
		case <-t.cancel:
			abortWanted = true
			abort("cancel")
		case <-timer.C:
			abortWanted = true
			abort("timeout")
			_, err := s.update(ctx, id, func(tx *sql.Tx, r *record) ([]string, error) {
				if r.Status != StatusInProgress && r.Status != StatusPending {
					return nil, errUnchanged
				}
				now := s.now()
				r.Status, r.EndedAt = StatusTimeout, &now
				r.ResultText = fmt.Sprintf("no result within %s; abort sent", s.opts.Timeout)
				return []string{EventTimeout}, nil
			})
			if err != nil && !errors.Is(err, errUnchanged) {
				log.Error().Err(err).Msg("payment timeout not recorded")
			} else if err == nil {
				log.Warn().Dur("timeout", s.opts.Timeout).Msg("payment timed out")
			}
		}
	}
}

// handler persists what the terminal sends before the driver
// acknowledges it. forReversal marks the events of posgate's own
// reversal of the payment.
func (s *Service) handler(t *term, id string, forReversal bool) device.TxEventHandler {
	return func(ctx context.Context, e device.TxEvent) error {
		switch e.Kind {
		case device.EventIntermediate:
			t.setMessage(e.Text)
			s.changed(id)
			return nil
		case device.EventStatusInfo:
			if e.Info == nil {
				return nil
			}
			_, err := s.update(ctx, id, func(tx *sql.Tx, r *record) ([]string, error) {
				if forReversal {
					r.ReversalInfo = e.Info
				} else {
					r.setInfo(e.Info)
				}
				return nil, nil
			})
			return retryLater(err)
		case device.EventPrint:
			if e.Receipt == nil {
				return nil
			}
			_, err := s.update(ctx, id, func(tx *sql.Tx, r *record) ([]string, error) {
				kind := e.Receipt.Kind
				if forReversal && kind == "" {
					kind = "reversal"
				}
				r.Receipts = append(r.Receipts, Receipt{Kind: kind, Lines: e.Receipt.Lines})
				return nil, nil
			})
			return err
		}
		return nil
	}
}

// retryLater marks a store that cannot take the Status-Information now
// (busy, full, failing: store.Unavailable) as worth asking again: the
// driver answers "repeat later" (ZVT 84 9C, PA00P015 §2.2.6) and the
// terminal sends it again in a moment, a bounded number of times, instead
// of reversing a payment for a store that was busy for a second. Other
// errors stay what they are: the driver refuses the Status-Information.
func retryLater(err error) error {
	if err != nil && store.Unavailable(err) {
		return fmt.Errorf("store the status information: %w: %w", device.ErrRetryLater, err)
	}
	return err
}

// conclude records how the terminal ended the payment. It reports doubt
// when the driver failed after the terminal may have taken the request.
func (s *Service) conclude(ctx context.Context, t *term, id string, o outcome) (doubt bool) {
	log := s.log.With().Str(logkey.PaymentID, id).Str(logkey.DeviceID, t.cfg.ID).Logger()
	if o.err != nil {
		if !errors.Is(o.err, device.ErrOffline) || errors.Is(o.err, device.ErrDisconnected) {
			s.lost(ctx, id, o.err)
			return true
		}
		// The link refused the job: nothing reached the terminal.
		_, err := s.updateQuiet(ctx, id, func(tx *sql.Tx, r *record) ([]string, error) {
			return s.closeNotCharged(r, "terminal offline: "+o.err.Error(), nil), nil
		})
		if err != nil {
			log.Error().Err(err).Msg("payment result not recorded")
			return true
		}
		return false
	}
	res := o.res
	reverse := false
	_, err := s.updateQuiet(ctx, id, func(tx *sql.Tx, r *record) ([]string, error) {
		if r.Info == nil && res.Info != nil {
			r.setInfo(res.Info)
		}
		r.setResult(res.Code, res.Message)
		now := s.now()
		switch r.Status {
		case StatusPending, StatusInProgress:
			r.Open, r.EndedAt = false, &now
			switch res.Outcome {
			case device.Approved:
				if why := amountMismatch(r); why != "" {
					return s.needsReviewMismatch(r, why, res.Info), nil
				}
				r.Status = StatusCompleted
				switch {
				case r.Type == TypeReversal:
					return []string{EventCompleted}, s.markReversedTx(ctx, tx, r)
				case r.Type == TypePreAuth:
					r.Reservation = &Reservation{Reserved: r.Amount, Remaining: r.Amount}
				case closesPreAuth(r.Type):
					return []string{EventCompleted}, s.closePreAuthTx(ctx, tx, r)
				}
				return []string{EventCompleted}, nil
			case device.Aborted:
				r.Status = StatusCancelled
				return []string{EventCancelled}, nil
			default:
				r.Status = StatusFailed
				return []string{EventFailed}, nil
			}
		case StatusTimeout:
			if res.Outcome != device.Approved {
				r.Open, r.Resolution, r.ResolvedAt = false, ResolutionNotCharged, &now
				return nil, nil
			}
			if r.Type != TypeSale || !reversible(r) {
				return s.needsReview(r, "approved after the timeout; not reversed automatically", nil, errReversalNotAllowed), nil
			}
			reverse = true
			r.ResultText = "approved after the timeout; reversing"
			return nil, nil
		}
		return nil, errUnchanged
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		log.Error().Err(err).Msg("payment result not recorded")
		return true
	}
	log.Info().Str("outcome", string(res.Outcome)).Uint8("code", res.Code).Msg("payment ended on the terminal")
	if reverse {
		return s.autoReverse(ctx, t, id)
	}
	return false
}

// lost records what can be known at once of a payment whose driver call
// failed after the request may have reached the terminal, so the cashier
// gets a final status now, not when the terminal is back. The terminal
// commits only what posgate acknowledged, and posgate persists before it
// acknowledges: without an approved Status-Information on record the
// payment is not charged. With one, the answer was lost after the
// approval: it is a timeout, and reconcile decides the rest.
func (s *Service) lost(ctx context.Context, id string, cause error) {
	log := s.log.With().Str(logkey.PaymentID, id).Logger()
	unknown := errors.Is(cause, device.ErrOutcomeUnknown) // the terminal commits without posgate's acknowledgement
	_, err := s.updateQuiet(ctx, id, func(tx *sql.Tx, r *record) ([]string, error) {
		if (r.Info == nil || r.Info.ResultCode != 0) && !unknown {
			return s.closeNotCharged(r, "the terminal stopped answering: "+cause.Error(), nil), nil
		}
		if r.Status.Final() {
			return nil, errUnchanged
		}
		now := s.now()
		r.Status, r.EndedAt = StatusTimeout, &now
		r.ResultText = "the line was lost after the terminal approved; reconciling"
		if unknown {
			r.ResultText = "the terminal's answer was lost; reconciling"
		}
		return []string{EventTimeout}, nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		log.Error().Err(err).Msg("payment result not recorded")
	}
	log.Warn().Err(cause).Msg("payment in doubt; reconciling the terminal")
}

// autoReverse voids a sale the terminal approved after posgate had
// given up on it (06 30 with its receipt number).
func (s *Service) autoReverse(ctx context.Context, t *term, id string) (doubt bool) {
	log := s.log.With().Str(logkey.PaymentID, id).Str(logkey.DeviceID, t.cfg.ID).Logger()
	r, err := getRecord(ctx, s.db.Read, id)
	if err != nil {
		log.Error().Err(err).Msg("read payment to reverse")
		return true
	}
	res, err := reverseOn(ctx, t.cfg.Device, r, s.handler(t, id, true))
	if err != nil {
		log.Warn().Err(err).Msg("automatic reversal in doubt; reconciling")
		return true
	}
	_, err = s.updateQuiet(ctx, id, func(tx *sql.Tx, r *record) ([]string, error) {
		if res.Outcome != device.Approved {
			return s.needsReview(r, fmt.Sprintf("approved after the timeout; the terminal refused the reversal: %02X %s", res.Code, res.Message),
				res.Info, nil), nil
		}
		return s.closeReversed(r, "auto", res.Info), nil
	})
	if err != nil {
		log.Error().Err(err).Msg("reversal not recorded")
		return true
	}
	log.Warn().Int(logkey.ReceiptNo, r.ReceiptNumber).Str("outcome", string(res.Outcome)).Msg("late approval reversed")
	return false
}

// closeReversed ends r as approved_then_reversed by the reversal whose
// Status-Information is info.
func (s *Service) closeReversed(r *record, by string, info *device.TxInfo) []string {
	now := s.now()
	if info == nil {
		info = r.ReversalInfo
	}
	rv := &Reversal{By: by, At: now}
	if info != nil {
		rv.ReceiptNumber, rv.TraceNumber = info.ReceiptNo, info.Trace
		r.ReversalInfo = info
	}
	r.Reversal = rv
	r.Open, r.Resolution, r.ResolvedAt = false, ResolutionReversed, &now
	r.ResultText = "approved after the timeout; reversed"
	return []string{EventReversed}
}

// amountMismatch cross-checks an approved refund or reversal: the
// amount in the terminal's Status-Information (ZVT BMP 04, persisted
// before it was acknowledged) must be the amount posgate asked to
// credit. It returns why not, or "" when it matches. A Status-Information
// without an amount cannot prove the credit, so it does not match
// either.
func amountMismatch(r *record) string {
	if r.Type != TypeRefund && r.Type != TypeReversal {
		return ""
	}
	switch {
	case r.Info == nil:
		return fmt.Sprintf("the terminal approved the %s without a Status-Information to check its amount", r.Type)
	case r.Info.Amount != r.Amount:
		return fmt.Sprintf("the terminal approved the %s for %d, not the %d asked for", r.Type, r.Info.Amount, r.Amount)
	}
	return ""
}

// needsReviewMismatch ends r, which the terminal approved for another
// amount than asked, for a person to check: never completed. It stays
// counted against its sale (status timeout, resolution needs_review, as
// an unresolved payment), a reversal does not mark the sale reversed,
// and payment.needs_review carries the evidence.
func (s *Service) needsReviewMismatch(r *record, why string, terminal *device.TxInfo) []string {
	s.needsReview(r, why, terminal, nil)
	return []string{EventNeedsReview}
}

// closeNotCharged ends r as not charged. A payment still in progress
// becomes failed (with its event) or, if it timed out, keeps its status.
func (s *Service) closeNotCharged(r *record, why string, ev *Evidence) []string {
	now := s.now()
	r.Open, r.Resolution, r.ResolvedAt, r.Evidence = false, ResolutionNotCharged, &now, ev
	if r.Status.Final() {
		return nil
	}
	r.Status, r.EndedAt, r.ResultText = StatusFailed, &now, why
	return []string{EventFailed}
}

// needsReview ends r for a person to check, keeping the evidence.
func (s *Service) needsReview(r *record, why string, terminal *device.TxInfo, err error) []string {
	now := s.now()
	ev := &Evidence{Reason: why, Recorded: terminalRecord(r.Info), Terminal: terminalRecord(terminal)}
	if err != nil {
		ev.Error = err.Error()
	}
	r.Open, r.Resolution, r.ResolvedAt, r.Evidence = false, ResolutionNeedsReview, &now, ev
	s.log.Error().Str(logkey.PaymentID, r.ID).Str("reason", why).Msg("payment needs review")
	if r.Status.Final() {
		return nil
	}
	r.Status, r.EndedAt, r.ResultText = StatusTimeout, &now, why
	return []string{EventTimeout}
}

// sleep waits d or until ctx ends; it reports false for the latter.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// markReversedTx records on the sale a reversal payment voided that it
// is reversed, with its payment.reversed event, in the reversal's
// transaction.
func (s *Service) markReversedTx(ctx context.Context, tx *sql.Tx, r *record) error {
	orig, err := getRecord(ctx, tx, r.OriginalPaymentID)
	if err != nil {
		return fmt.Errorf("read reversed payment: %w", err)
	}
	now := s.now()
	orig.Reversal = &Reversal{By: r.ID, ReceiptNumber: r.ReceiptNumber, TraceNumber: r.TraceNumber, At: now}
	orig.UpdatedAt = now
	if err := saveTx(ctx, tx, orig); err != nil {
		return err
	}
	return s.opts.EmitTx(ctx, tx, EventReversed, orig.Payment)
}
