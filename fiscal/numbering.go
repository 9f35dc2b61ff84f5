package fiscal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/posgate/posgate/store"
)

// Signing before the write transaction (issue 17 part 1).
//
// The scheme signs the invoice's number, so a signature needs the number
// first. The durable counter (invoice_counters) is still advanced only in
// the invoice's own transaction, as before: what is new is that the
// number is guessed before it, by an in-memory numberer, and signed
// there, on the caller's goroutine and outside the writer's batch.
//
//   - The numberer hands out the next number of the year (and a turn) to
//     one caller at a time, with the issue time, under its mutex.
//   - The caller signs, then waits for its turn: the callers before it
//     have queued their transactions (store.WithQueued). So transactions
//     reach the writer, and commit, in number order.
//   - In the transaction the caller checks the counter: if its number is
//     the next one and the document it signed is the one the transaction
//     would sign, the counter takes the number and the invoice is written
//     with the signature made before. Otherwise (a caller before it was
//     refused or abandoned, a batch was aborted, a refund's original
//     changed) nothing is written and the caller starts again with a new
//     number; the first such caller of a generation sets the numberer
//     back to the counter, so the callers after it number right again.
//
// Gapless across crashes: a number is durable only in the commit of the
// invoice that uses it, exactly as when the number was taken inside the
// transaction; a guessed number lives only in memory, and a crash
// forgets it with the request. Nothing outside the process sees a
// signature before its invoice commits.
//
// After presignAttempts guesses, the last attempt numbers and signs
// inside the transaction, which cannot miss.

// presignAttempts bounds the guessed numbers one Create tries.
const presignAttempts = 3

// errRenumber: the guessed number is not the counter's next one.
var errRenumber = errors.New("invoice number guessed before the transaction was taken")

// numberer guesses the next invoice numbers of one business unit and
// device.
type numberer struct {
	mu   sync.Mutex
	year map[int]*yearSeq
	// tail is closed when the last turn handed out has queued.
	tail chan struct{}
}

type yearSeq struct {
	next int64
	gen  uint64
}

func newNumberer() *numberer {
	t := make(chan struct{})
	close(t)
	return &numberer{year: map[int]*yearSeq{}, tail: t}
}

// guess is a number handed out before the transaction.
type guess struct {
	ordinal int64
	year    int
	gen     uint64
	issued  time.Time // seconds precision
	now     time.Time
	prev    <-chan struct{}
	mine    chan struct{}
	once    sync.Once
}

// queued ends the guess's turn: the next caller may queue its
// transaction. Safe to call more than once.
func (g *guess) queued() { g.once.Do(func() { close(g.mine) }) }

// take hands out the next number of the current year. The first number
// of a year in this process is read from the counter.
func (n *numberer) take(ctx context.Context, s *Invoices) (*guess, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := s.opts.Now()
	issued := now.Truncate(time.Second)
	year := issued.In(s.opts.Location).Year()
	y := n.year[year]
	if y == nil {
		var last int64
		err := s.db.Read.QueryRowContext(ctx, "SELECT last FROM invoice_counters WHERE business_unit = ? AND device = ? AND year = ?",
			s.opts.BusinessUnit, s.opts.Device, year).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("read invoice counter: %w", err)
		}
		y = &yearSeq{next: last + 1}
		n.year[year] = y
	}
	g := &guess{ordinal: y.next, year: year, gen: y.gen, issued: issued, now: now, prev: n.tail, mine: make(chan struct{})}
	y.next++
	n.tail = g.mine
	return g, nil
}

// missed sets the numberer back after g's number turned out not to be
// the counter's next (last is the counter in the transaction), unless a
// caller of g's generation did so already.
func (n *numberer) missed(g *guess, last int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if y := n.year[g.year]; y != nil && y.gen == g.gen {
		y.next = last + 1
		y.gen++
	}
}

// presigned is an invoice signed before its transaction.
type presigned struct {
	*guess
	certID string
	doc    Document
	sig    Signature
}

// presign checks req on a read snapshot, guesses its number and signs
// it, then waits for its turn to queue. It returns nil, nil when there
// is nothing to sign before (an earlier invoice under the same
// idempotency key). A refusal on the snapshot is final: the request
// could have arrived a moment earlier.
func (s *Invoices) presign(ctx context.Context, req NewInvoice, items []Item, pays []Payment, c Caller) (*presigned, error) {
	tx, err := s.db.Read.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if c.IdempotencyKey != "" {
		_, err := s.byIdempotencyKey(ctx, tx, c.KeyID, c.IdempotencyKey)
		if err == nil {
			return nil, nil
		}
		if !errors.Is(err, ErrInvoiceNotFound) {
			return nil, err
		}
	}
	d, err := s.prepareTx(ctx, tx, req, slices.Clone(items), slices.Clone(pays), c)
	if err != nil {
		return nil, err
	}
	_ = tx.Rollback()

	g, err := s.numbers.take(ctx, s)
	if err != nil {
		return nil, err
	}
	p := &presigned{guess: g, certID: d.cert.ID, doc: s.document(d, g.ordinal, g.issued)}
	p.sig, err = s.opts.Scheme.Sign(ctx, d.signer, p.doc)
	if err != nil {
		g.queued()
		return nil, fmt.Errorf("sign invoice: %w", err)
	}
	select {
	case <-g.prev:
	case <-ctx.Done():
		g.queued()
		return nil, ctx.Err()
	}
	return p, nil
}

// numberTx takes the invoice's number in tx and signs d: with the
// signature made before the transaction when pre guessed the counter's
// next number and signed this very document; else (pre nil) by taking
// the next number and signing here. A wrong guess is errRenumber, with
// nothing written.
func (s *Invoices) numberTx(ctx context.Context, tx *sql.Tx, d draft, pre *presigned, now time.Time) (int64, time.Time, Signature, error) {
	if pre == nil {
		issued := now.Truncate(time.Second)
		ord, err := nextOrdinalTx(ctx, tx, s.opts.BusinessUnit, s.opts.Device, issued.In(s.opts.Location).Year())
		if err != nil {
			return 0, time.Time{}, Signature{}, err
		}
		if s.opts.Scheme == nil { // a profile that signs nothing (bg, none)
			return ord, issued, Signature{}, nil
		}
		sig, err := s.opts.Scheme.Sign(ctx, d.signer, s.document(d, ord, issued))
		if err != nil {
			return 0, time.Time{}, Signature{}, fmt.Errorf("sign invoice: %w", err)
		}
		return ord, issued, sig, nil
	}
	var last int64
	err := tx.QueryRowContext(ctx, "SELECT last FROM invoice_counters WHERE business_unit = ? AND device = ? AND year = ?",
		s.opts.BusinessUnit, s.opts.Device, pre.year).Scan(&last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, Signature{}, fmt.Errorf("read invoice counter: %w", err)
	}
	if last+1 != pre.ordinal {
		s.numbers.missed(pre.guess, last)
		return 0, time.Time{}, Signature{}, errRenumber
	}
	if pre.certID != d.cert.ID || pre.doc != s.document(d, pre.ordinal, pre.issued) {
		// The snapshot and the transaction disagree (a refund's original
		// changed): sign again with the next guess.
		s.numbers.missed(pre.guess, last)
		return 0, time.Time{}, Signature{}, errRenumber
	}
	ord, err := nextOrdinalTx(ctx, tx, s.opts.BusinessUnit, s.opts.Device, pre.year)
	if err != nil {
		return 0, time.Time{}, Signature{}, err
	}
	if ord != pre.ordinal {
		return 0, time.Time{}, Signature{}, fmt.Errorf("next invoice number: took %d, expected %d", ord, pre.ordinal)
	}
	return ord, pre.issued, pre.sig, nil
}

// document is what the scheme signs for d under a number and time.
func (s *Invoices) document(d draft, ord int64, issued time.Time) Document {
	return Document{
		TIN: d.tin, IssuedAt: issued, Ordinal: ord, BusinessUnit: s.opts.BusinessUnit,
		Device: s.opts.Device, Software: s.opts.Software, Total: Money(d.totals.Total),
	}
}

// createOnce runs one attempt of Create's transaction. pre is nil for the
// attempt that numbers and signs inside the transaction.
func (s *Invoices) createOnce(ctx context.Context, req NewInvoice, items []Item, pays []Payment, c Caller, pre *presigned) (Invoice, error) {
	txCtx := ctx
	if pre != nil {
		defer pre.queued()
		txCtx = store.WithQueued(ctx, pre.queued)
	}
	var inv Invoice
	err := s.db.InTx(txCtx, func(tx *sql.Tx) error {
		if c.IdempotencyKey != "" {
			prev, err := s.byIdempotencyKey(ctx, tx, c.KeyID, c.IdempotencyKey)
			if err == nil {
				inv = prev
				if c.CompleteTx != nil {
					return c.CompleteTx(ctx, tx, inv)
				}
				return nil
			}
			if !errors.Is(err, ErrInvoiceNotFound) {
				return err
			}
		}
		// Clones: the function must not change what a next attempt uses.
		var err error
		inv, err = s.createTx(ctx, tx, req, slices.Clone(items), slices.Clone(pays), c, pre)
		if err != nil {
			return err
		}
		if c.CompleteTx != nil {
			return c.CompleteTx(ctx, tx, inv)
		}
		return nil
	})
	return inv, err
}
