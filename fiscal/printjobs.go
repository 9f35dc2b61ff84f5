package fiscal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/store"
)

// Print job states.
const (
	PrintPending = "pending"
	PrintPrinted = "printed"
	PrintDead    = "dead"
)

// PrintJobsOptions configure PrintJobs. Printer and PrinterID are required.
type PrintJobsOptions struct {
	// Printer prints whole receipts idempotently per document ID, with
	// a Ledger from NewLedger on the same store (device/datecs does).
	Printer device.ReceiptPrinter
	// PrinterID is the configured printer whose jobs this runner takes.
	PrinterID string
	// EmitTx writes events. Default EmitToOutbox.
	EmitTx EmitTxFunc
	Log    zerolog.Logger
	// Receipt shapes the printed receipt (operator, VAT groups, width).
	Receipt ReceiptOptions
	// Profile, when set, prints each receipt (what it shows beside the
	// lines and payments) and says whether printing completes the
	// fiscalization. Without it the receipt shows the signature
	// (SignatureFooter) and fiscalization.completed fires on print.
	Profile Profile
	// Backoff is the wait before the n-th retry (the last entry repeats).
	// Default 2 s, 5 s, 15 s, 30 s, 60 s.
	Backoff []time.Duration
	// NotReady tells a printer that is not ready (offline, out of paper,
	// cover open) from one that refused the document: waiting for a
	// printer spends no attempt. Default PrinterNotReady; a driver's own
	// transport errors can be added (datecs.ErrNoAnswer).
	NotReady func(error) bool
	// Poll is how often the runner looks for due jobs when not woken.
	// Default 1 s.
	Poll time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// AwaitFIC, when set, gives the invoice's FIC if the tax service
	// registers it within a short wait (Registrations.AwaitFIC), so the
	// receipt can print it; "" prints the IIC alone, as the law allows.
	AwaitFIC func(ctx context.Context, invoiceID string) string
}

// PrintJobs prints each invoice's print job on the printer, once. It
// retries while the printer is offline, out of paper or refusing, and
// after its attempts the job is dead (fiscalization.dead_letter).
type PrintJobs struct {
	db   *store.DB
	opts PrintJobsOptions
	wake chan struct{}

	mu    sync.Mutex
	fm    string         // fiscal memory serial, once known
	waits map[string]int // consecutive not-ready failures per job
}

// PrinterNotReady reports whether err says the printer cannot print now
// but will again by itself or with a person's hand: offline, unplugged,
// not answering, out of paper, cover open.
func PrinterNotReady(err error) bool {
	for _, e := range []error{device.ErrOffline, device.ErrDisconnected, device.ErrTimeout,
		device.ErrPaperOut, device.ErrCoverOpen, io.EOF, io.ErrUnexpectedEOF, net.ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// NewPrintJobs returns a runner over db; Run starts it.
func NewPrintJobs(db *store.DB, opts PrintJobsOptions) *PrintJobs {
	if db == nil || opts.Printer == nil || opts.PrinterID == "" {
		panic("fiscal: db, Printer and PrinterID are required")
	}
	if opts.EmitTx == nil {
		opts.EmitTx = EmitToOutbox
	}
	if len(opts.Backoff) == 0 {
		opts.Backoff = []time.Duration{2 * time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute}
	}
	if opts.Poll == 0 {
		opts.Poll = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NotReady == nil {
		opts.NotReady = PrinterNotReady
	}
	opts.Receipt = opts.Receipt.withDefaults()
	return &PrintJobs{db: db, opts: opts, wake: make(chan struct{}, 1), waits: make(map[string]int)}
}

// Wake makes Run look for due jobs now; Invoices calls it after a commit
// (InvoicesOptions.Notify). It never blocks.
func (p *PrintJobs) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run prints due jobs one at a time, oldest first, until ctx ends; then
// it returns nil. Jobs left pending by a crash are due at once, and the
// printer's ledger makes their retry print nothing twice.
func (p *PrintJobs) Run(ctx context.Context) error {
	log := p.opts.Log.With().Str(logkey.Component, "printjobs").Str(logkey.DeviceID, p.opts.PrinterID).Logger()
	t := time.NewTimer(0)
	defer t.Stop()
	failures := 0
	ratesSeen := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		case <-t.C:
		}
		if !ratesSeen {
			ratesSeen = p.connect(ctx)
		}
		for ctx.Err() == nil {
			did, err := p.RunOnce(ctx)
			if err != nil && ctx.Err() == nil {
				// The store failed; the job stays due. Log the first and
				// every 60th in a row.
				if failures%60 == 0 {
					log.Error().Err(err).Int("consecutive_errors", failures+1).Msg("print job store error")
				}
				failures++
				break
			}
			if failures > 0 && err == nil {
				log.Info().Int("consecutive_errors", failures).Msg("print job store recovered")
				failures = 0
			}
			if !did {
				break
			}
		}
		t.Reset(p.opts.Poll)
	}
}

// job is a claimed print job.
type job struct {
	invoiceID   string
	attempts    int
	maxAttempts int
}

// RunOnce prints the next job, if one is due, and reports whether there
// was one: an interrupted job first, else the one due soonest. Errors are the store's; a printer's failure is recorded on the
// job and is not an error here.
func (p *PrintJobs) RunOnce(ctx context.Context) (bool, error) {
	now := p.opts.Now()
	var (
		j   job
		due int64
	)
	// A job whose attempt reached the printer but did not finish (its
	// receipt may still be open there) goes before every other, and
	// blocks them until it is due again: another document would clear
	// that receipt and print over it, and the interrupted job could then
	// no longer tell whether its document printed.
	err := p.db.Read.QueryRowContext(ctx, `SELECT invoice_id, attempts, max_attempts, next_attempt_at FROM print_jobs
		WHERE state = 'pending' AND printer_id = ?
		ORDER BY (attempt IS NOT NULL AND COALESCE(json_extract(attempt, '$.Done'), 0) = 0) DESC,
			next_attempt_at, created_at LIMIT 1`, p.opts.PrinterID).
		Scan(&j.invoiceID, &j.attempts, &j.maxAttempts, &due)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim print job: %w", err)
	}
	if due > store.Millis(now) {
		return false, nil
	}
	var doc []byte
	if err := p.db.Read.QueryRowContext(ctx, "SELECT doc FROM invoices WHERE id = ?", j.invoiceID).Scan(&doc); err != nil {
		return false, fmt.Errorf("read invoice %s: %w", j.invoiceID, err)
	}
	var inv Invoice
	if err := json.Unmarshal(doc, &inv); err != nil {
		return false, fmt.Errorf("decode invoice %s: %w", j.invoiceID, err)
	}
	// Count the attempt before it starts: a crash mid-print still spends
	// it, so a document that crashes the daemon cannot loop forever.
	j.attempts++
	if err := p.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE print_jobs SET attempts = ?, updated_at = ? WHERE invoice_id = ?",
			j.attempts, store.Millis(now), j.invoiceID)
		return err
	}); err != nil {
		return false, fmt.Errorf("count print attempt %s: %w", j.invoiceID, err)
	}
	var (
		res  device.ReceiptResult
		perr error
	)
	orig, perr := p.originalReceipt(ctx, inv)
	if p.opts.AwaitFIC != nil && perr == nil {
		if fic := p.opts.AwaitFIC(ctx, inv.ID); fic != "" {
			inv.Fiscalization = &FiscalizationStatus{Status: RegCompleted, FIC: fic}
		}
	}
	var ro ReceiptOptions
	if perr == nil {
		ro, perr = p.receiptOptions(ctx, inv)
	}
	if perr == nil {
		if p.opts.Profile != nil {
			res, perr = p.opts.Profile.Print(ctx, p.opts.Printer, inv, receiptBody(inv, ro, orig))
		} else {
			res, perr = p.opts.Printer.PrintReceipt(ctx, receiptOf(inv, ro, orig))
		}
	}
	if perr != nil && ctx.Err() != nil {
		// Shutting down mid-print: the ledger lets the next start resume.
		return true, nil
	}
	if perr == nil {
		return true, p.printed(ctx, inv, j, res)
	}
	return true, p.failed(ctx, inv, j, perr)
}

func (p *PrintJobs) printed(ctx context.Context, inv Invoice, j job, res device.ReceiptResult) error {
	now := p.opts.Now()
	p.mu.Lock()
	delete(p.waits, inv.ID)
	p.mu.Unlock()
	fm := p.fiscalMemory(ctx)
	ps := PrintStatus{PrinterID: p.opts.PrinterID, State: PrintPrinted, Attempts: j.attempts,
		ReceiptNumber: res.Number, FiscalMemory: fm}
	at := now.UTC().Truncate(time.Millisecond)
	ps.PrintedAt = &at
	inv.Print = &ps
	p.opts.Log.Info().Str(logkey.InvoiceID, inv.ID).Int(logkey.ReceiptNo, res.Number).Bool("recovered", res.Recovered).
		Msg("invoice printed")
	var completed any = inv
	if p.opts.Profile != nil {
		// The profile may ask the printer what it fiscalized (bg: the
		// receipt's QR data); what it could not read is logged, and the
		// event carries the rest.
		var err error
		completed, err = p.opts.Profile.Completed(ctx, p.opts.Printer, inv, res, fm)
		if err != nil {
			p.opts.Log.Warn().Err(err).Str(logkey.InvoiceID, inv.ID).Msg("read fiscalization data after print")
		}
	}
	return p.db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE print_jobs SET state = 'printed', receipt_number = ?, fiscal_memory = ?,
			printed_at = ?, last_error = '', updated_at = ? WHERE invoice_id = ?`,
			res.Number, fm, store.Millis(now), store.Millis(now), inv.ID)
		if err != nil {
			return fmt.Errorf("mark printed %s: %w", inv.ID, err)
		}
		printedData := map[string]any{
			"invoice_id": inv.ID, "invoice_number": inv.Number, "printer_id": p.opts.PrinterID,
			"receipt_number": res.Number, "fiscal_memory_serial": fm, "amount": res.Amount,
			"attempts": j.attempts, "recovered": res.Recovered,
		}
		if inv.SaleNumber != "" {
			printedData["sale_number"] = inv.SaleNumber
		}
		if err := p.opts.EmitTx(ctx, tx, EventReceiptPrinted, printedData); err != nil {
			return fmt.Errorf("enqueue %s: %w", EventReceiptPrinted, err)
		}
		if completed == nil {
			return nil
		}
		if err := p.opts.EmitTx(ctx, tx, EventCompleted, completed); err != nil {
			return fmt.Errorf("enqueue %s: %w", EventCompleted, err)
		}
		return nil
	})
}

// errOriginalNotPrinted: a refund's or void's storno receipt must quote
// the sale's printed receipt, which is not printed yet; it waits.
var errOriginalNotPrinted = errors.New("the original invoice is not printed yet")

// originalReceipt returns the printed receipt a refund or void reverses;
// nil for a sale.
func (p *PrintJobs) originalReceipt(ctx context.Context, inv Invoice) (*printedReceipt, error) {
	if inv.OriginalInvoiceID == nil {
		return nil, nil
	}
	id := *inv.OriginalInvoiceID
	var (
		state   string
		number  sql.NullInt64
		fm      sql.NullString
		printed sql.NullInt64
		attempt sql.NullString
	)
	err := p.db.Read.QueryRowContext(ctx, `SELECT state, receipt_number, fiscal_memory, printed_at, attempt
		FROM print_jobs WHERE invoice_id = ?`, id).Scan(&state, &number, &fm, &printed, &attempt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("original invoice %s has no printed receipt to reverse", id)
	case err != nil:
		return nil, fmt.Errorf("read print job of %s: %w", id, err)
	case state == PrintPending:
		return nil, fmt.Errorf("%w: %s", errOriginalNotPrinted, id)
	case state != PrintPrinted:
		return nil, fmt.Errorf("original invoice %s was never printed (%s)", id, state)
	}
	pr := &printedReceipt{Number: int(number.Int64), FiscalMemory: fm.String, Time: store.FromMillis(printed.Int64)}
	// The driver's ledger has the printer's own closing time.
	var a device.PrintAttempt
	if attempt.Valid && json.Unmarshal([]byte(attempt.String), &a) == nil && !a.Result.Time.IsZero() {
		pr.Time = a.Result.Time
	}
	return pr, nil
}

// fiscalMemory asks the driver for the fiscal memory serial, once.
func (p *PrintJobs) fiscalMemory(ctx context.Context) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fm != "" {
		return p.fm
	}
	switch d := p.opts.Printer.(type) {
	case interface{ Identity() device.PrinterInfo }:
		p.fm = d.Identity().FiscalMemory
	case interface {
		Info(context.Context) (device.PrinterInfo, error)
	}:
		if info, err := d.Info(ctx); err == nil {
			p.fm = info.FiscalMemory
		}
	}
	return p.fm
}

func (p *PrintJobs) failed(ctx context.Context, inv Invoice, j job, perr error) error {
	now := p.opts.Now()
	// Offline, out of paper, cover open: the printer will be back, so
	// this is a retry (receipt.retry) that gives its attempt back, and the
	// job waits as long as the printer does. Anything else is an error
	// (receipt.error), retried until the attempts run out. A document
	// whose fate the printer cannot tell is dead at once: only a person
	// can check the journal, and re-sending could print it twice.
	uncertain := errors.Is(perr, device.ErrPrintUncertain)
	waiting := !uncertain && (p.opts.NotReady(perr) || errors.Is(perr, errOriginalNotPrinted))
	log := p.opts.Log.With().Str(logkey.InvoiceID, inv.ID).Int(logkey.Attempt, j.attempts).Bool("printer_not_ready", waiting).Logger()
	p.mu.Lock()
	n := j.attempts
	if waiting {
		j.attempts--
		p.waits[inv.ID]++
		n = p.waits[inv.ID]
	} else {
		delete(p.waits, inv.ID)
	}
	p.mu.Unlock()
	dead := uncertain || (!waiting && j.attempts >= j.maxAttempts)
	wait := p.opts.Backoff[min(n-1, len(p.opts.Backoff)-1)]
	next := now.Add(wait)
	return p.db.InTx(ctx, func(tx *sql.Tx) error {
		state := PrintPending
		if dead {
			state = PrintDead
		}
		_, err := tx.ExecContext(ctx, `UPDATE print_jobs SET state = ?, attempts = ?, last_error = ?, next_attempt_at = ?,
			updated_at = ? WHERE invoice_id = ?`, state, j.attempts, perr.Error(), store.Millis(next), store.Millis(now), inv.ID)
		if err != nil {
			return fmt.Errorf("record print failure %s: %w", inv.ID, err)
		}
		data := map[string]any{
			"invoice_id": inv.ID, "invoice_number": inv.Number, "printer_id": p.opts.PrinterID,
			"attempt": j.attempts, "max_attempts": j.maxAttempts, "error": perr.Error(),
		}
		ev := EventReceiptError
		if waiting {
			ev = EventReceiptRetry
		}
		if !dead {
			data["next_attempt_at"] = next.UTC()
			log.Warn().Err(perr).Dur("retry_in", wait).Msg("print failed; will retry")
		}
		if err := p.opts.EmitTx(ctx, tx, ev, data); err != nil {
			return fmt.Errorf("enqueue %s: %w", ev, err)
		}
		if dead {
			log.Error().Err(perr).Msg("print job dead; check the printer's journal, then requeue it (POST /v1/print-jobs/{id}/requeue)")
			ps := PrintStatus{PrinterID: p.opts.PrinterID, State: PrintDead, Attempts: j.attempts, LastError: perr.Error()}
			inv.Print = &ps
			if err := p.opts.EmitTx(ctx, tx, EventDeadLetter, inv); err != nil {
				return fmt.Errorf("enqueue %s: %w", EventDeadLetter, err)
			}
		}
		return nil
	})
}

// insertPrintJobTx queues an invoice for printing in its creating
// transaction: due at once.
func insertPrintJobTx(ctx context.Context, tx *sql.Tx, invoiceID, printerID string, maxAttempts int, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO print_jobs (invoice_id, printer_id, state, max_attempts, next_attempt_at, created_at, updated_at)
		VALUES (?, ?, 'pending', ?, ?, ?, ?)`, invoiceID, printerID, maxAttempts, store.Millis(now), store.Millis(now), store.Millis(now))
	if err != nil {
		return fmt.Errorf("insert print job: %w", err)
	}
	return nil
}

// printStatus reads an invoice's print job; nil if it has none.
func printStatus(ctx context.Context, q querier, invoiceID string) (*PrintStatus, error) {
	var (
		ps      PrintStatus
		receipt sql.NullInt64
		fm      sql.NullString
		printed sql.NullInt64
	)
	err := q.QueryRowContext(ctx, `SELECT printer_id, state, attempts, last_error, receipt_number, fiscal_memory, printed_at
		FROM print_jobs WHERE invoice_id = ?`, invoiceID).
		Scan(&ps.PrinterID, &ps.State, &ps.Attempts, &ps.LastError, &receipt, &fm, &printed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read print job %s: %w", invoiceID, err)
	}
	ps.ReceiptNumber, ps.FiscalMemory = int(receipt.Int64), fm.String
	if printed.Valid {
		t := store.FromMillis(printed.Int64)
		ps.PrintedAt = &t
	}
	return &ps, nil
}

// errRateNotOnPrinter: an invoice has a VAT rate no group of the printer
// has now (it was reprogrammed since the invoice was accepted).
var errRateNotOnPrinter = errors.New("VAT rate not programmed on the printer")

// receiptOptions are the receipt options with the VAT groups of the
// printer's current connection, when the printer can tell them: an item
// prints in the group programmed at its rate, never by a fixed table.
func (p *PrintJobs) receiptOptions(ctx context.Context, inv Invoice) (ReceiptOptions, error) {
	o := p.opts.Receipt
	rp, ok := p.opts.Printer.(RatesPrinter)
	if !ok {
		return o, nil
	}
	rates, err := rp.ProgrammedRates(ctx)
	if err != nil {
		return o, fmt.Errorf("read the printer's VAT rates: %w", err)
	}
	o.VATGroups = GroupsOf(rates)
	for _, it := range inv.Items {
		r, _ := parseDecimal(string(it.VATRate), 2)
		if _, ok := o.VATGroups[r]; !ok {
			return o, fmt.Errorf("%w: item %q at %s%%", errRateNotOnPrinter, it.Name, it.VATRate)
		}
	}
	return o, nil
}

// connect asks a RatesPrinter for its VAT rates once the runner starts,
// so the printer connects (and reports its rates, which invoices are
// checked against) before the first job, not with it. It reports
// whether the printer answered; Run asks again at each poll until then.
func (p *PrintJobs) connect(ctx context.Context) bool {
	rp, ok := p.opts.Printer.(RatesPrinter)
	if !ok {
		return true
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := rp.ProgrammedRates(cctx)
	return err == nil
}
