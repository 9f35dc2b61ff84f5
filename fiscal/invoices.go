package fiscal

import (
	"context"
	"crypto"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/posgate/posgate/store"
)

// Invoice errors beside *ValidationError.
var (
	ErrInvoiceNotFound     = errors.New("invoice not found")
	ErrNoCertificate       = errors.New("the API key is bound to no certificate")
	ErrCertificateNotBound = errors.New("the certificate is not the one bound to the API key")
	ErrTINMismatch         = errors.New("the certificate's TIN is not the configured taxpayer's")
	ErrAlreadyVoided       = errors.New("the original invoice is already voided or refunded")
)

// Event types written by fiscal.
const (
	EventInvoiceCreated = "invoice.created"
	EventReceiptPrinted = "receipt.printed"
	EventReceiptRetry   = "receipt.retry"
	EventReceiptError   = "receipt.error"
	EventCompleted      = "fiscalization.completed"
	EventDeadLetter     = "fiscalization.dead_letter"
)

// EmitTxFunc writes an event in the caller's transaction, so the event
// commits with the change it reports. cmd/posgate adapts outbox.EnqueueTx.
// data is encoded as JSON; it may be a json.RawMessage already encoded
// (invoice.created carries the stored document).
type EmitTxFunc func(ctx context.Context, tx *sql.Tx, eventType string, data any) error

// InvoicesOptions configure Invoices. Scheme and Certificates are
// required, and so are the identifiers the scheme signs.
type InvoicesOptions struct {
	// Profile, when set, is the country profile: its Scheme replaces
	// Scheme (nil: nothing is signed and no certificate is needed), and
	// it numbers and completes each invoice.
	Profile      Profile
	Scheme       Scheme
	Certificates *Certificates
	// EmitTx writes events. Default EmitToOutbox.
	EmitTx EmitTxFunc

	TIN          string // the taxpayer; a certificate with another TIN cannot sign
	BusinessUnit string
	Device       string // the electronic cash register (TCR/ENU) code
	Software     string
	// Currency of every invoice. Default "EUR".
	Currency string
	// VATGroups maps each VAT rate the printer knows, in hundredths of a
	// percent, to its printer group 1…8 (A…H). Only these rates are
	// accepted. Default Montenegro's: 21 % → 1, 7 % → 2, 0 % → 3.
	VATGroups map[int64]int
	// Location is the zone whose calendar year numbers restart in.
	// Default time.Local; give the scheme's zone.
	Location *time.Location
	// PrinterID, when set, gives every invoice a print job on that
	// printer in the transaction that creates it.
	PrinterID string
	// PrintAttempts is a print job's attempt budget. Default 20.
	PrintAttempts int
	// PrinterRates, with PrinterID, makes the accepted VAT rates those
	// the printer reported on its last connection (VATGroups is then not
	// used): an invoice with a rate the printer lacks is refused before
	// anything is committed. Before the printer's first connection Create
	// waits up to RatesWait (default 5 s), then ErrPrinterRatesUnknown.
	PrinterRates *PrinterRates
	RatesWait    time.Duration
	// Payments reads the card payments an invoice links by payment_id,
	// in its transaction. Without it, a card payment with a payment_id is
	// refused.
	Payments PaymentReader
	// Notify is called after an invoice with a print job commits;
	// wire it to PrintJobs.Wake. Optional.
	Notify func()
	// RegisterTx, when set, checks the signed invoice for the tax service
	// and adds its registration job in the invoice's transaction
	// (Registrations.EnqueueInvoiceTx); its *ValidationError refuses the
	// invoice. Registered is called after such an invoice commits
	// (Registrations.Wake). Both optional.
	RegisterTx func(ctx context.Context, tx *sql.Tx, inv Invoice) error
	Registered func()
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Invoices issues, numbers, signs and stores invoices.
type Invoices struct {
	db      *store.DB
	opts    InvoicesOptions
	rates   []int64
	numbers *numberer
	// signInTx turns presigning off (tests and benchmarks: the baseline).
	signInTx bool
}

// NewInvoices returns Invoices over db. It panics on missing required
// options: a programmer's error.
func NewInvoices(db *store.DB, opts InvoicesOptions) *Invoices {
	if opts.Profile != nil {
		opts.Scheme = opts.Profile.Scheme()
	}
	if db == nil || (opts.Scheme == nil && opts.Profile == nil) || (opts.Scheme != nil && opts.Certificates == nil) {
		panic("fiscal: db, a Profile or Scheme, and Certificates for a Scheme are required")
	}
	if opts.EmitTx == nil {
		opts.EmitTx = EmitToOutbox
	}
	if opts.Currency == "" {
		opts.Currency = "EUR"
	}
	if opts.VATGroups == nil {
		opts.VATGroups = defaultVATGroups()
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.RatesWait <= 0 {
		opts.RatesWait = 5 * time.Second
	}
	if opts.PrintAttempts == 0 {
		opts.PrintAttempts = 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	inv := &Invoices{db: db, opts: opts, numbers: newNumberer()}
	for r := range opts.VATGroups {
		inv.rates = append(inv.rates, r)
	}
	slices.Sort(inv.rates)
	return inv
}

// Caller is who asks for an invoice: the API key and the certificate
// bound to it, and the request's Idempotency-Key.
type Caller struct {
	KeyID          string
	CertificateID  string // bound to the key; "" if none
	IdempotencyKey string
	// CompleteTx, when set, runs in the invoice's transaction after the
	// invoice was written, or found under IdempotencyKey: the API keeps
	// the request's idempotency record there, so the invoice and its kept
	// answer commit together. Its error refuses the invoice.
	CompleteTx func(ctx context.Context, tx *sql.Tx, inv Invoice) error
}

// Create validates, numbers, signs and stores an invoice, with its
// invoice.created event and its print job, in one transaction; the
// signature is made before it (see numbering.go). If the
// caller's key already created an invoice under the same
// IdempotencyKey, that invoice is returned and nothing is written.
//
// Errors: *ValidationError; ErrNoCertificate, ErrCertificateNotBound,
// ErrTINMismatch; the certificate errors of Certificates.SignerTx;
// ErrAlreadyVoided; ErrPrinterRatesUnknown.
func (s *Invoices) Create(ctx context.Context, req NewInvoice, c Caller) (Invoice, error) {
	rates, err := s.acceptedRates(ctx)
	if err != nil {
		return Invoice{}, err
	}
	items, pays, err := validate(req, s.opts.Currency, rates)
	if err != nil {
		return Invoice{}, err
	}
	if s.opts.Scheme != nil && c.CertificateID == "" {
		return Invoice{}, ErrNoCertificate
	}
	if s.opts.Scheme != nil && req.CertificateID != "" && req.CertificateID != c.CertificateID {
		return Invoice{}, ErrCertificateNotBound
	}
	var inv Invoice
	for attempt := 1; ; attempt++ {
		var pre *presigned
		// Only a signing profile has work worth doing before the lock.
		if attempt < presignAttempts && !s.signInTx && s.opts.Scheme != nil {
			if pre, err = s.presign(ctx, req, items, pays, c); err != nil {
				return Invoice{}, err
			}
		}
		inv, err = s.createOnce(ctx, req, items, pays, c, pre)
		if pre == nil || !errors.Is(err, errRenumber) {
			break
		}
	}
	if err != nil {
		return Invoice{}, err
	}
	if inv.Print != nil && s.opts.Notify != nil {
		s.opts.Notify()
	}
	if s.opts.RegisterTx != nil && s.opts.Registered != nil {
		s.opts.Registered()
	}
	return inv, nil
}

// draft is an invoice checked and totalled, ready to be numbered and
// signed.
type draft struct {
	cert   Certificate
	signer crypto.Signer
	tin    string
	items  []Item
	pays   []Payment
	totals Totals
}

// prepareTx checks an invoice against the store (its certificate, the
// original of a refund or void, the card payments it links) and totals
// it. It changes items and pays. It writes nothing, so it runs both on a
// read snapshot before the number is guessed and in the transaction.
func (s *Invoices) prepareTx(ctx context.Context, tx *sql.Tx, req NewInvoice, items []Item, pays []Payment, c Caller) (draft, error) {
	// A profile that signs nothing needs no certificate.
	cert, signer := Certificate{ID: NoCertificate}, crypto.Signer(nil)
	if s.opts.Scheme != nil {
		var err error
		if cert, signer, err = s.opts.Certificates.SignerTx(ctx, tx, c.CertificateID); err != nil {
			return draft{}, err
		}
	}
	if cert.TIN != "" && s.opts.TIN != "" && cert.TIN != s.opts.TIN {
		return draft{}, fmt.Errorf("%w: certificate %s is for %s, the device is configured for %s", ErrTINMismatch, cert.ID, cert.TIN, s.opts.TIN)
	}
	tin := s.opts.TIN
	if tin == "" {
		tin = cert.TIN
	}
	sign := int64(1)
	if req.Type != TypeSale {
		sign = -1
		orig, err := s.getTx(ctx, tx, req.OriginalInvoiceID)
		if errors.Is(err, ErrInvoiceNotFound) {
			return draft{}, invalid("original_invoice_id", "no invoice %q", req.OriginalInvoiceID)
		}
		if err != nil {
			return draft{}, err
		}
		if items, pays, err = s.checkOriginalTx(ctx, tx, req, orig, items, pays); err != nil {
			return draft{}, err
		}
	}
	totals := computeTotals(items, pays, sign)
	if totals.Total == 0 {
		// A fiscal printer refuses a receipt of nothing, and so would the
		// tax service.
		return draft{}, invalid("items", "the total must be above 0")
	}
	if err := checkPayments(pays, totals, sign); err != nil {
		return draft{}, err
	}
	if req.Type != TypeVoid {
		// Before any number is taken: a refused invoice writes nothing.
		if err := s.checkCardPaymentsTx(ctx, tx, req.Type, pays); err != nil {
			return draft{}, err
		}
	}
	for i := range items {
		items[i].Amount *= sign
	}
	for i := range pays {
		pays[i].Amount *= sign
	}
	return draft{cert: cert, signer: signer, tin: tin, items: items, pays: pays, totals: totals}, nil
}

func (s *Invoices) createTx(ctx context.Context, tx *sql.Tx, req NewInvoice, items []Item, pays []Payment, c Caller, pre *presigned) (Invoice, error) {
	d, err := s.prepareTx(ctx, tx, req, items, pays, c)
	if err != nil {
		return Invoice{}, err
	}
	cert, tin, items, pays, totals := d.cert, d.tin, d.items, d.pays, d.totals

	now := s.opts.Now()
	if pre != nil {
		now = pre.now
	}
	// Seconds precision: the scheme signs seconds, and the stored time
	// must be the signed one.
	ord, issued, sig, err := s.numberTx(ctx, tx, d, pre, now)
	if err != nil {
		return Invoice{}, err
	}
	year := issued.In(s.opts.Location).Year()
	inv := Invoice{
		ID:            "inv_" + invoiceID(time.Now()),
		Type:          req.Type,
		Number:        DefaultNumber(s.opts.BusinessUnit, ord, year, s.opts.Device),
		Ordinal:       ord,
		Year:          year,
		BusinessUnit:  s.opts.BusinessUnit,
		Device:        s.opts.Device,
		Software:      s.opts.Software,
		TIN:           tin,
		Currency:      s.opts.Currency,
		IssuedAt:      issued.UTC(),
		Items:         items,
		Payments:      pays,
		Totals:        totals,
		CertificateID: cert.ID,
		KeyID:         c.KeyID,
	}
	if req.OriginalInvoiceID != "" {
		inv.OriginalInvoiceID = &req.OriginalInvoiceID
	}
	if s.opts.Profile != nil {
		inv.Number = s.opts.Profile.Number(s.opts.BusinessUnit, ord, year, s.opts.Device)
	}
	if s.opts.Scheme != nil {
		sig.CertificateSerial, sig.CertificateSHA256 = cert.Serial, cert.Thumbprint
		inv.Signature = sig
	}
	if s.opts.Profile != nil {
		if err := s.opts.Profile.PrepareTx(ctx, tx, &inv); err != nil {
			return Invoice{}, err
		}
	}
	if s.opts.PrinterID != "" {
		inv.Print = &PrintStatus{PrinterID: s.opts.PrinterID, State: PrintPending}
	}
	doc, err := s.insertTx(ctx, tx, inv, c, now)
	if err != nil {
		return Invoice{}, err
	}
	if err := insertCardClaimsTx(ctx, tx, inv); err != nil {
		return Invoice{}, err
	}
	if inv.Print != nil {
		if err := insertPrintJobTx(ctx, tx, inv.ID, s.opts.PrinterID, s.opts.PrintAttempts, now); err != nil {
			return Invoice{}, err
		}
	}
	if s.opts.RegisterTx != nil {
		if err := s.opts.RegisterTx(ctx, tx, inv); err != nil {
			return Invoice{}, err
		}
		inv.Fiscalization = &FiscalizationStatus{Status: RegPending, DeadlineAt: inv.IssuedAt.Add(48 * time.Hour)}
	}
	// The event's data is the stored document unless RegisterTx changed
	// the invoice since: one encoding less on the writer's path.
	var data any = inv
	if s.opts.RegisterTx == nil {
		data = json.RawMessage(doc)
	}
	if err := s.opts.EmitTx(ctx, tx, EventInvoiceCreated, data); err != nil {
		return Invoice{}, fmt.Errorf("enqueue %s: %w", EventInvoiceCreated, err)
	}
	return inv, nil
}

// checkOriginalTx checks a refund or void against the sale it reverses.
// A void takes the original's items and payments; a refund may return
// at most what is left of the original.
func (s *Invoices) checkOriginalTx(ctx context.Context, tx *sql.Tx, req NewInvoice, orig Invoice, items []Item, pays []Payment) ([]Item, []Payment, error) {
	if orig.Type != TypeSale {
		return nil, nil, invalid("original_invoice_id", "%s is a %s; only a sale can be refunded or voided", orig.ID, orig.Type)
	}
	var reversed int64 // negative: the sum of earlier refunds and voids
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(total), 0) FROM invoices WHERE original_invoice_id = ?", orig.ID).Scan(&reversed); err != nil {
		return nil, nil, fmt.Errorf("read refunds of %s: %w", orig.ID, err)
	}
	if req.Type == TypeVoid {
		if reversed != 0 {
			return nil, nil, fmt.Errorf("%w: %s", ErrAlreadyVoided, orig.ID)
		}
		items = make([]Item, len(orig.Items))
		for i, it := range orig.Items {
			q, _ := parseDecimal(string(it.Quantity), 3)
			r, _ := parseDecimal(string(it.VATRate), 2)
			it.quantity, it.rate = q, r
			items[i] = it
		}
		pays = make([]Payment, len(orig.Payments))
		copy(pays, orig.Payments)
		// Change given on the sale is not paid back.
		if orig.Totals.Change > 0 {
			for i := range pays {
				if pays[i].Type == PayCash {
					pays[i].Amount -= orig.Totals.Change
					break
				}
			}
		}
		return items, pays, nil
	}
	var sum int64
	for _, it := range items {
		sum += it.Amount
	}
	if left := orig.Totals.Total + reversed; sum > left {
		return nil, nil, invalid("items", "the refund (%s) exceeds what is left of %s (%s)", Money(sum), orig.ID, Money(left))
	}
	return items, pays, nil
}

// checkPayments: payments cover the total; any excess is change, which
// only cash can give.
func checkPayments(pays []Payment, t Totals, sign int64) error {
	var cash int64
	for _, p := range pays {
		if p.Type == PayCash {
			cash += p.Amount
		}
	}
	change := sign * t.Change
	switch {
	case change < 0:
		return invalid("payments", "pay %s in total, not %s", Money(sign*t.Total), Money(sign*t.Paid))
	case change > cash:
		return invalid("payments", "card payments exceed the total; only cash can give change")
	case sign < 0 && change != 0:
		return invalid("payments", "a refund pays back exactly %s, not %s", Money(-t.Total), Money(-t.Paid))
	}
	return nil
}

// nextOrdinalTx takes the next ordinal of a business unit, device and
// year. It runs in the invoice's transaction: a rollback gives the
// number back, so numbers have no gaps; the single writer connection
// and BEGIN IMMEDIATE serialise the increments, so none repeats.
func nextOrdinalTx(ctx context.Context, tx *sql.Tx, bu, device string, year int) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, `INSERT INTO invoice_counters (business_unit, device, year, last) VALUES (?, ?, ?, 1)
		ON CONFLICT (business_unit, device, year) DO UPDATE SET last = last + 1 RETURNING last`, bu, device, year).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("next invoice number: %w", err)
	}
	return n, nil
}

// insertTx writes inv and returns its stored JSON document.
func (s *Invoices) insertTx(ctx context.Context, tx *sql.Tx, inv Invoice, c Caller, now time.Time) ([]byte, error) {
	doc, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("encode invoice: %w", err)
	}
	var idem any
	if c.IdempotencyKey != "" {
		idem = c.IdempotencyKey
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO invoices (id, type, business_unit, device, year, ordinal,
		original_invoice_id, certificate_id, key_id, idempotency_key, total, issued_at, created_at, doc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		inv.ID, inv.Type, inv.BusinessUnit, inv.Device, inv.Year, inv.Ordinal, inv.OriginalInvoiceID,
		inv.CertificateID, inv.KeyID, idem, inv.Totals.Total, store.Millis(inv.IssuedAt), store.Millis(now), string(doc))
	if err != nil {
		return nil, fmt.Errorf("insert invoice: %w", err)
	}
	return doc, nil
}

// acceptedRates are the VAT rates an invoice may use, in hundredths of a
// percent: the printer's, as it reported them on its last connection,
// when it is known which printer prints; else the configured VATGroups.
func (s *Invoices) acceptedRates(ctx context.Context) ([]int64, error) {
	if s.opts.PrinterID == "" || s.opts.PrinterRates == nil {
		return s.rates, nil
	}
	v, err := s.opts.PrinterRates.Wait(ctx, s.opts.PrinterID, s.opts.RatesWait)
	if err != nil {
		return nil, err
	}
	var rates []int64
	for r := range GroupsOf(v) {
		rates = append(rates, r)
	}
	slices.Sort(rates)
	return rates, nil
}
