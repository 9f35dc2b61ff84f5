package fiscal

import (
	"context"
	"crypto"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
)

// Registration events beside the invoice events.
const (
	EventDeadlineWarning = "fiscalization.deadline_warning"
	// StageTaxService is the stage receipt.retry and receipt.error name
	// when the tax service, not the printer, failed.
	StageTaxService = "tax_service"
)

// Registration errors.
var (
	ErrRegistrationNotFound = errors.New("registration not found")
	ErrNotRetryable         = errors.New("the registration is not dead or refused; it needs no retry")
)

// RegistrationsOptions configure Registrations. Registrar and
// Certificates are required.
type RegistrationsOptions struct {
	Registrar    Registrar
	Certificates *Certificates
	// EmitTx writes events. Default EmitToOutbox.
	EmitTx EmitTxFunc
	Log    zerolog.Logger
	// Schedule is the wait before the n-th retry; the last entry
	// repeats (fiscal.retry_schedule). Default 10 s, 60 s, 300 s, 600 s.
	Schedule []time.Duration
	// MaxAttempts before a registration is dead (fiscal.max_attempts).
	// Default 50.
	MaxAttempts int
	// Deadline is how long after issue an invoice must be registered.
	// Default 48 h (ME law; functional spec "48 sati").
	Deadline time.Duration
	// WarnBefore is how long before the deadline
	// fiscalization.deadline_warning fires. Default 12 h.
	WarnBefore time.Duration
	// LateAfter: a first request sent later than this after issue is a
	// subsequent delivery. Default 60 s.
	LateAfter time.Duration
	// Poll is how often Run looks for due work when not woken. Default 1 s.
	Poll time.Duration
	// Quiet: the till goes first. Run sends nothing until no invoice has
	// committed (Wake) for this long, but defers a send by at most
	// MaxDefer. Defaults 20 ms and 1 s: a shop's invoices come seconds
	// apart, so only a burst waits, and never for long.
	Quiet, MaxDefer time.Duration
	// Notify is called after a commit that wrote events (wire it to
	// the outbox relay). Optional.
	Notify func()
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// AfterSend, if set, runs between the answer and the commit that
	// records it; a test makes it fail to act out a kill -9 there.
	AfterSend func(id string) error
}

// Registrations registers invoices, the device and cash deposits with
// the tax service, durably: a job commits with what it registers, one
// worker (Run) sends jobs oldest first, retries temporary failures on
// schedule, waits without spending attempts while the link is down, and
// dead-letters a job after its attempts.
type Registrations struct {
	db   *store.DB
	opts RegistrationsOptions
	wake chan struct{}

	mu    sync.Mutex
	certs map[string]cachedSigner // by certificate id

	lastWarnCheck time.Time    // owned by the Run goroutine (RunOnce)
	lastWake      atomic.Int64 // unix nanoseconds of the last Wake
}

// NewRegistrations returns the registration worker over db.
func NewRegistrations(db *store.DB, opts RegistrationsOptions) *Registrations {
	if db == nil || opts.Registrar == nil || opts.Certificates == nil {
		panic("fiscal: db, Registrar and Certificates are required")
	}
	if opts.EmitTx == nil {
		opts.EmitTx = EmitToOutbox
	}
	if len(opts.Schedule) == 0 {
		opts.Schedule = []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 10 * time.Minute}
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 50
	}
	if opts.Deadline == 0 {
		opts.Deadline = 48 * time.Hour
	}
	if opts.WarnBefore == 0 {
		opts.WarnBefore = 12 * time.Hour
	}
	if opts.LateAfter == 0 {
		opts.LateAfter = time.Minute
	}
	if opts.Poll == 0 {
		opts.Poll = time.Second
	}
	if opts.Quiet == 0 {
		opts.Quiet = 20 * time.Millisecond
	}
	if opts.MaxDefer == 0 {
		opts.MaxDefer = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Registrations{db: db, opts: opts, wake: make(chan struct{}, 1), certs: map[string]cachedSigner{}}
}

// Wake makes Run look for due work now. It never blocks.
func (r *Registrations) Wake() {
	r.lastWake.Store(time.Now().UnixNano())
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// CheckInvoiceTx validates inv for the tax service inside the invoice's
// transaction, before anything commits: a *ValidationError names the
// field. Wire it, then EnqueueInvoiceTx, as InvoicesOptions.RegisterTx.
func (r *Registrations) CheckInvoiceTx(ctx context.Context, tx *sql.Tx, inv Invoice) (*Invoice, error) {
	var orig *Invoice
	if inv.OriginalInvoiceID != nil {
		o, err := readInvoiceTx(ctx, tx, *inv.OriginalInvoiceID)
		if err != nil {
			return nil, err
		}
		orig = &o
	}
	return orig, r.opts.Registrar.Check(inv, orig)
}

// EnqueueInvoiceTx checks inv and adds its registration job in the
// caller's transaction: the invoice, its IIC and the job commit
// together. It is InvoicesOptions.RegisterTx.
func (r *Registrations) EnqueueInvoiceTx(ctx context.Context, tx *sql.Tx, inv Invoice) error {
	if _, err := r.CheckInvoiceTx(ctx, tx, inv); err != nil {
		return err
	}
	return r.insertTx(ctx, tx, inv.ID, KindInvoice, inv.CertificateID, "", inv.IssuedAt)
}

// Enqueue adds a TCR or cash deposit registration in its own
// transaction and wakes the worker. id must be unique ("tcr_…", "dep_…").
func (r *Registrations) Enqueue(ctx context.Context, id, kind, certificateID string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s registration: %w", kind, err)
	}
	err = r.db.InTx(ctx, func(tx *sql.Tx) error {
		return r.insertTx(ctx, tx, id, kind, certificateID, string(b), r.opts.Now())
	})
	if err == nil {
		r.Wake()
	}
	return err
}

func (r *Registrations) insertTx(ctx context.Context, tx *sql.Tx, id, kind, certID, payload string, issued time.Time) error {
	now := store.Millis(r.opts.Now())
	_, err := tx.ExecContext(ctx, `INSERT INTO fiscal_registrations (id, kind, certificate_id, payload, state,
		max_attempts, next_attempt_at, issued_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)`,
		id, kind, certID, payload, r.opts.MaxAttempts, now, store.Millis(issued), now, now)
	if err != nil {
		return fmt.Errorf("insert %s registration %s: %w", kind, id, err)
	}
	return nil
}

func readInvoiceTx(ctx context.Context, q querier, id string) (Invoice, error) {
	var doc []byte
	err := q.QueryRowContext(ctx, "SELECT doc FROM invoices WHERE id = ?", id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return Invoice{}, ErrInvoiceNotFound
	}
	if err != nil {
		return Invoice{}, fmt.Errorf("read invoice %s: %w", id, err)
	}
	var inv Invoice
	if err := json.Unmarshal(doc, &inv); err != nil {
		return Invoice{}, fmt.Errorf("decode invoice %s: %w", id, err)
	}
	return inv, nil
}

// Run sends due registrations one at a time, oldest first, until ctx
// ends; then it returns nil. It is the queue's only owner.
func (r *Registrations) Run(ctx context.Context) error {
	log := r.opts.Log.With().Str(logkey.Component, "registrations").Logger()
	t := time.NewTimer(0)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
		case <-t.C:
		}
		for ctx.Err() == nil {
			r.yieldToTill(ctx)
			did, err := r.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				if failures%60 == 0 {
					log.Error().Err(err).Int("consecutive_errors", failures+1).Msg("registration store error")
				}
				failures++
				break
			}
			if failures > 0 && err == nil {
				log.Info().Int("consecutive_errors", failures).Msg("registration store recovered")
				failures = 0
			}
			if !did {
				break
			}
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(r.opts.Poll)
	}
}

// yieldToTill waits until no invoice has committed for opts.Quiet, or
// opts.MaxDefer has passed: the worker's RSA signing and commits then do
// not compete with an invoice the till is waiting for. Real time, not
// opts.Now: it is about the CPU and the writer, not the schedule.
func (r *Registrations) yieldToTill(ctx context.Context) {
	start := time.Now()
	for {
		since := time.Since(time.Unix(0, r.lastWake.Load()))
		left := r.opts.MaxDefer - time.Since(start)
		if since >= r.opts.Quiet || left <= 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(r.opts.Quiet-since, left)):
		}
	}
}

// regJob is a claimed registration.
type regJob struct {
	seq                   int64
	id, kind, certID      string
	payload               string
	attempts, maxAttempts int
	sends                 int
	lastClass             string
	issued                time.Time
	due                   int64
}

// RunOnce sends the oldest pending registration if it is due and
// reports whether it did; it also raises deadline warnings. Errors are
// the store's; the service's failures are recorded on the job.
func (r *Registrations) RunOnce(ctx context.Context) (bool, error) {
	if err := r.warnDeadlines(ctx); err != nil {
		return false, err
	}
	if r.opts.Notify != nil {
		defer r.opts.Notify()
	}
	now := r.opts.Now()
	var j regJob
	var issued int64
	// A refund or void waits while its sale's registration is refused or
	// dead: the service must have the sale before its correction
	// (functional spec, corrective invoices). Retrying the sale frees it.
	err := r.db.Read.QueryRowContext(ctx, `SELECT seq, id, kind, certificate_id, payload, attempts, max_attempts,
		sends, last_class, issued_at, next_attempt_at FROM fiscal_registrations AS r
		WHERE state = 'pending' AND NOT EXISTS (SELECT 1 FROM invoices AS i
			JOIN fiscal_registrations AS o ON o.id = i.original_invoice_id
			WHERE i.id = r.id AND o.state IN ('error', 'dead'))
		ORDER BY seq LIMIT 1`).
		Scan(&j.seq, &j.id, &j.kind, &j.certID, &j.payload, &j.attempts, &j.maxAttempts, &j.sends, &j.lastClass, &issued, &j.due)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim registration: %w", err)
	}
	// In order: the oldest job waits for its time and holds the others
	// back, so a refund never reaches the service before its sale, and
	// while the link is down one job probes for all.
	if j.due > store.Millis(now) {
		return false, nil
	}
	j.issued = store.FromMillis(issued)
	a := Attempt{Kind: j.kind, Now: now, LastClass: j.lastClass,
		Resend: j.sends > 0 || j.lastClass != "" || now.Sub(j.issued) > r.opts.LateAfter}
	if j.kind == KindInvoice {
		inv, err := readInvoiceTx(ctx, r.db.Read, j.id)
		if err != nil {
			return false, err
		}
		a.Invoice = &inv
		if inv.OriginalInvoiceID != nil {
			o, err := readInvoiceTx(ctx, r.db.Read, *inv.OriginalInvoiceID)
			if err != nil {
				return false, err
			}
			a.Original = &o
		}
	} else {
		a.Payload = json.RawMessage(j.payload)
	}
	a.Signer, a.Certificate, err = r.signer(ctx, j.certID)
	var req []byte
	if err == nil {
		req, err = r.opts.Registrar.Build(ctx, a)
	}
	if err != nil {
		var re *RegistrationError
		if !errors.As(err, &re) {
			re = &RegistrationError{Class: ClassRejected, Message: err.Error(), Err: err}
		}
		re.Class = ClassRejected
		j.attempts++
		return true, r.failed(ctx, j, re, 0, nil)
	}
	// The attempt is counted and the request kept before it leaves: a
	// crash mid-send still spends it, and the request is on record.
	j.attempts++
	var exID int64
	if err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE fiscal_registrations SET attempts = ?, sends = sends + 1, updated_at = ? WHERE id = ?",
			j.attempts, store.Millis(now), j.id); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO fiscal_exchanges (registration_id, attempt, sent_at, request)
			VALUES (?, ?, ?, ?) RETURNING id`, j.id, j.attempts, store.Millis(now), string(req)).Scan(&exID)
	}); err != nil {
		return false, fmt.Errorf("count registration attempt %s: %w", j.id, err)
	}
	code, answer, serr := r.opts.Registrar.Send(ctx, j.kind, req)
	if serr != nil && ctx.Err() != nil {
		return true, nil // shutting down: the job stays pending
	}
	if r.opts.AfterSend != nil {
		if err := r.opts.AfterSend(j.id); err != nil {
			return false, err
		}
	}
	if serr == nil {
		return true, r.completed(ctx, j, exID, code, answer, a)
	}
	var re *RegistrationError
	if !errors.As(serr, &re) {
		re = &RegistrationError{Class: ClassTemporary, Message: serr.Error(), Err: serr}
	}
	return true, r.failed(ctx, j, re, exID, answer)
}

// signerTTL is how long a looked-up signer is reused: the lookup takes
// the writer's lock (SignerTx wants a transaction), which a backlog
// would otherwise take once more per invoice, beside the till's.
const signerTTL = time.Minute

type cachedSigner struct {
	s    crypto.Signer
	x    *x509.Certificate
	till time.Time
}

// signer returns the certificate's signer and parsed certificate. A
// certificate deactivated or expired stops signing within signerTTL.
func (r *Registrations) signer(ctx context.Context, certID string) (crypto.Signer, *x509.Certificate, error) {
	now := time.Now()
	r.mu.Lock()
	if c, ok := r.certs[certID]; ok && now.Before(c.till) {
		r.mu.Unlock()
		return c.s, c.x, nil
	}
	r.mu.Unlock()
	// SignerTx wants a transaction; the read pool cannot begin one (its
	// DSN asks for BEGIN IMMEDIATE), and a writer transaction that writes
	// nothing costs no fsync.
	var (
		c Certificate
		s crypto.Signer
	)
	err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		c, s, err = r.opts.Certificates.SignerTx(ctx, tx, certID)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("certificate %s cannot sign the request: %w", certID, err)
	}
	blk, _ := pem.Decode([]byte(c.CertificatePEM))
	if blk == nil {
		return nil, nil, fmt.Errorf("certificate %s: no PEM", certID)
	}
	x, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate %s: %w", certID, err)
	}
	r.mu.Lock()
	r.certs[certID] = cachedSigner{s: s, x: x, till: now.Add(signerTTL)}
	r.mu.Unlock()
	return s, x, nil
}

func (r *Registrations) completed(ctx context.Context, j regJob, exID int64, code string, answer []byte, a Attempt) error {
	now := r.opts.Now()
	log := r.opts.Log.Info().Str(logkey.InvoiceID, j.id).Str("kind", j.kind).Int(logkey.Attempt, j.attempts)
	log.Str("code", code).Msg("registered with the tax service")
	return r.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE fiscal_exchanges SET response = ?, outcome = 'completed' WHERE id = ?", string(answer), exID); err != nil {
			return fmt.Errorf("record answer of %s: %w", j.id, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE fiscal_registrations SET state = 'completed', result = ?, last_error = '',
			code = '', blocking = 0, completed_at = ?, updated_at = ? WHERE id = ?`, code, store.Millis(now), store.Millis(now), j.id); err != nil {
			return fmt.Errorf("mark %s registered: %w", j.id, err)
		}
		data := map[string]any{"kind": j.kind, "id": j.id, "code": code, "attempts": j.attempts,
			"registered_at": now.UTC(), "subsequent_delivery": a.Resend}
		if a.Invoice != nil {
			inv := *a.Invoice
			data = map[string]any{"invoice_id": inv.ID, "invoice_number": inv.Number, "iic": inv.Signature.Code,
				"fic": code, "verify_url": inv.Signature.VerifyURL, "issued_at": inv.IssuedAt, "attempts": j.attempts,
				"registered_at": now.UTC(), "subsequent_delivery": a.Resend, "kind": j.kind}
		}
		if err := r.opts.EmitTx(ctx, tx, EventCompleted, data); err != nil {
			return fmt.Errorf("enqueue %s: %w", EventCompleted, err)
		}
		return nil
	})
}

// failed records a failed attempt: offline gives the attempt back and
// waits; temporary retries on schedule or, after the last attempt,
// dead-letters; rejected waits for a person.
func (r *Registrations) failed(ctx context.Context, j regJob, re *RegistrationError, exID int64, answer []byte) error {
	now := r.opts.Now()
	base := map[string]any{"stage": StageTaxService, "kind": j.kind, "id": j.id, "attempt": j.attempts,
		"max_attempts": j.maxAttempts, "code": re.Code, "message": re.Message, "sent_at": now.UTC()}
	if j.kind == KindInvoice {
		base["invoice_id"] = j.id
	}
	log := r.opts.Log.With().Str(logkey.InvoiceID, j.id).Str("kind", j.kind).Int(logkey.Attempt, j.attempts).
		Str("class", re.Class).Str("code", re.Code).Logger()
	var (
		state   = RegPending
		next    = now
		event   string
		attempt = j.attempts
	)
	switch re.Class {
	case ClassOffline:
		// The link is down: the attempt is given back and the job (and
		// every job behind it) waits. Probe on the schedule's first step.
		attempt--
		next = now.Add(r.opts.Schedule[0])
		if j.lastClass != ClassOffline {
			event = EventReceiptRetry
			log.Warn().Err(re).Msg("tax service unreachable; invoices are kept for later delivery")
		}
	case ClassRejected:
		state, event = RegError, EventReceiptError
		base["blocking"] = re.Blocking
		log.Error().Err(re).Bool("blocking", re.Blocking).Msg("tax service refused the request")
	default:
		if j.attempts >= j.maxAttempts {
			state, event = RegDead, EventDeadLetter
			log.Error().Err(re).Msg("registration dead after its last attempt")
		} else {
			i := min(j.attempts-1, len(r.opts.Schedule)-1)
			next = now.Add(r.opts.Schedule[max(i, 0)])
			event = EventReceiptRetry
			base["next_attempt_at"] = next.UTC()
			log.Warn().Err(re).Time("next_attempt_at", next).Msg("registration failed; will retry")
		}
	}
	return r.db.InTx(ctx, func(tx *sql.Tx) error {
		if exID != 0 {
			if _, err := tx.ExecContext(ctx, "UPDATE fiscal_exchanges SET response = ?, outcome = ?, error = ? WHERE id = ?",
				string(answer), re.Class, re.Error(), exID); err != nil {
				return fmt.Errorf("record answer of %s: %w", j.id, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE fiscal_registrations SET state = ?, attempts = ?, next_attempt_at = ?,
			last_class = ?, last_error = ?, code = ?, blocking = ?, updated_at = ? WHERE id = ?`,
			state, attempt, store.Millis(next), re.Class, re.Error(), re.Code, re.Blocking, store.Millis(now), j.id); err != nil {
			return fmt.Errorf("record failure of %s: %w", j.id, err)
		}
		if event != "" {
			if err := r.opts.EmitTx(ctx, tx, event, base); err != nil {
				return fmt.Errorf("enqueue %s: %w", event, err)
			}
		}
		return nil
	})
}

// warnDeadlines raises fiscalization.deadline_warning once for each
// invoice that nears its deadline without a FIC.
func (r *Registrations) warnDeadlines(ctx context.Context) error {
	now := r.opts.Now()
	// Once a minute is plenty for a 12-hour warning, and keeps a backlog
	// drain from scanning the open registrations per invoice.
	if !r.lastWarnCheck.IsZero() && now.Sub(r.lastWarnCheck) < time.Minute && now.After(r.lastWarnCheck) {
		return nil
	}
	r.lastWarnCheck = now
	limit := now.Add(-(r.opts.Deadline - r.opts.WarnBefore))
	rows, err := r.db.Read.QueryContext(ctx, `SELECT id, issued_at, state, last_error FROM fiscal_registrations
		INDEXED BY fiscal_registrations_open
		WHERE state != 'completed' AND kind = 'invoice' AND warned = 0 AND issued_at <= ? ORDER BY seq LIMIT 100`, store.Millis(limit))
	if err != nil {
		return fmt.Errorf("find invoices near their deadline: %w", err)
	}
	type due struct {
		id, state, lastErr string
		issued             int64
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.issued, &d.state, &d.lastErr); err != nil {
			rows.Close()
			return fmt.Errorf("find invoices near their deadline: %w", err)
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find invoices near their deadline: %w", err)
	}
	for _, d := range list {
		deadline := store.FromMillis(d.issued).Add(r.opts.Deadline)
		r.opts.Log.Error().Str(logkey.InvoiceID, d.id).Time("deadline", deadline).Msg("invoice nears its registration deadline without a FIC")
		err := r.db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "UPDATE fiscal_registrations SET warned = 1 WHERE id = ?", d.id); err != nil {
				return err
			}
			return r.opts.EmitTx(ctx, tx, EventDeadlineWarning, map[string]any{"invoice_id": d.id,
				"issued_at": store.FromMillis(d.issued), "deadline_at": deadline, "status": d.state, "last_error": d.lastErr})
		})
		if err != nil {
			return fmt.Errorf("warn deadline of %s: %w", d.id, err)
		}
	}
	return nil
}
