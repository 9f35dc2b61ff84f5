package bg_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/bg"
	"github.com/posgate/posgate/store/storetest"
)

// fakePrinter is a Bulgarian fiscal printer as bg.SalePrinter sees it:
// it takes the UNP at receipt open, numbers receipts, prints each
// document ID once, refuses a UNP a closed sale used (a storno carries
// its sale's), and reports the receipt's QR data in the form of Naredba
// N-18 appendix 18a (fiscal memory*document number*date*time*amount).
// device/datecs does this on the wire (30h with the UNP, 4Ah read-back).
type fakePrinter struct {
	mu       sync.Mutex
	serial   string
	fm       string
	fmErr    error
	next     int
	printed  map[string]bg.Sale
	used     map[string]bool
	unps     []string
	receipts []device.Receipt
}

func newFake() *fakePrinter {
	return &fakePrinter{serial: "DT279013", fm: "02279013", next: 41, printed: map[string]bg.Sale{}, used: map[string]bool{}}
}

func (f *fakePrinter) PrintReceipt(context.Context, device.Receipt) (device.ReceiptResult, error) {
	return device.ReceiptResult{}, errors.New("a Bulgarian sale must be opened with its UNP")
}

func (f *fakePrinter) PrintSale(_ context.Context, unp string, r device.Receipt) (bg.Sale, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.printed[r.ID]; ok {
		s.Recovered = true
		return s, nil
	}
	if r.Storno == nil && f.used[unp] {
		return bg.Sale{}, fmt.Errorf("UNP %s used by a closed sale", unp)
	}
	var total int64
	for _, p := range r.Payments {
		total += p.Amount
	}
	f.next++
	res := device.ReceiptResult{ID: r.ID, Number: f.next, Amount: total, Time: time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC)}
	s := bg.Sale{ReceiptResult: res, FiscalMemory: f.fm,
		QRData: fmt.Sprintf("%s*%07d*2026-12-06*10:30:00*%d.%02d", f.fm, res.Number, total/100, total%100)}
	f.printed[r.ID] = s
	f.used[unp] = true
	f.unps = append(f.unps, unp)
	f.receipts = append(f.receipts, r)
	return s, nil
}

func (f *fakePrinter) Serial(context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.serial, f.fmErr
}

// events collects what the pipeline emits, in order.
type events struct {
	mu   sync.Mutex
	list []event
}

type event struct {
	Type string
	Data map[string]any
}

func (e *events) emit(_ context.Context, _ *sql.Tx, typ string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, event{typ, m})
	return nil
}

func (e *events) of(typ string) []map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []map[string]any
	for _, ev := range e.list {
		if ev.Type == typ {
			out = append(out, ev.Data)
		}
	}
	return out
}

var sale = fiscal.NewInvoice{Type: fiscal.TypeSale,
	Items:    []fiscal.NewItem{{Name: "Баница", Quantity: "2", UnitPrice: 250, VATRate: "20"}},
	Payments: []fiscal.NewPayment{{Type: fiscal.PayCash, Amount: 500}}}

func rig(t *testing.T, p *fakePrinter) (*fiscal.Invoices, *fiscal.PrintJobs, *events) {
	t.Helper()
	db := storetest.Open(t)
	prof, err := bg.New(bg.Options{Operator: "0001", DeviceSerial: p.Serial})
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	jobs := fiscal.NewPrintJobs(db, fiscal.PrintJobsOptions{Printer: p, PrinterID: "p1", Profile: prof, EmitTx: ev.emit,
		Log: zerolog.New(zerolog.NewTestWriter(t)), Backoff: []time.Duration{time.Millisecond}})
	inv := fiscal.NewInvoices(db, fiscal.InvoicesOptions{Profile: prof, TIN: "204567890", BusinessUnit: "shop1",
		Device: "pos1", Software: "posgate", Currency: "BGN", VATGroups: map[int64]int{0: 1, 2000: 2, 900: 4},
		PrinterID: "p1", EmitTx: ev.emit})
	return inv, jobs, ev
}

// A Bulgarian sale end to end: the invoice takes a UNP with no
// certificate bound to the key, the fiscal printer opens the receipt
// with it, and fiscalization.completed carries the printer's receipt
// number, fiscal memory serial, UNP and the QR data read after close.
func TestSaleFiscalizedByPrinter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newFake()
	invoices, jobs, ev := rig(t, p)

	inv, err := invoices.Create(ctx, sale, fiscal.Caller{KeyID: "key_1", IdempotencyKey: "s1"})
	if err != nil {
		t.Fatalf("create without a certificate: %v", err)
	}
	if inv.SaleNumber != "DT279013-0001-0000001" {
		t.Errorf("UNP %q, want DT279013-0001-0000001", inv.SaleNumber)
	}
	if inv.Signature.Code != "" || inv.CertificateID != fiscal.NoCertificate {
		t.Errorf("bg signed something: %+v, certificate %q", inv.Signature, inv.CertificateID)
	}
	inv2, err := invoices.Create(ctx, sale, fiscal.Caller{KeyID: "key_1", IdempotencyKey: "s2"})
	if err != nil || inv2.SaleNumber != "DT279013-0001-0000002" {
		t.Fatalf("second UNP %q, %v", inv2.SaleNumber, err)
	}
	for i := 0; i < 2; i++ {
		if did, err := jobs.RunOnce(ctx); !did || err != nil {
			t.Fatalf("run %d: %v %v", i, did, err)
		}
	}
	if len(p.unps) != 2 || p.unps[0] != inv.SaleNumber || p.unps[1] != inv2.SaleNumber {
		t.Fatalf("printer opened receipts with %q", p.unps)
	}
	if got := p.receipts[0].Footer; len(got) != 1 || got[0] != "No "+inv.Number {
		t.Errorf("footer %q, want the invoice number only", got)
	}
	done := ev.of(fiscal.EventCompleted)
	if len(done) != 2 {
		t.Fatalf("%d fiscalization.completed, want 2", len(done))
	}
	want := map[string]any{"invoice_id": inv.ID, "unp": inv.SaleNumber, "receipt_number": float64(42),
		"fiscal_memory_serial": "02279013", "qr_data": "02279013*0000042*2026-12-06*10:30:00*5.00"}
	for k, v := range want {
		if done[0][k] != v {
			t.Errorf("completed %s = %v, want %v", k, done[0][k], v)
		}
	}
	if pr := ev.of(fiscal.EventReceiptPrinted); len(pr) != 2 || pr[1]["sale_number"] != inv2.SaleNumber {
		t.Errorf("receipt.printed: %v", pr)
	}

	// A void is a storno receipt with the sale's UNP, and takes no new one.
	void, err := invoices.Create(ctx, fiscal.NewInvoice{Type: fiscal.TypeVoid, OriginalInvoiceID: inv.ID}, fiscal.Caller{KeyID: "key_1", IdempotencyKey: "v1"})
	if err != nil || void.SaleNumber != inv.SaleNumber {
		t.Fatalf("void: UNP %q, %v", void.SaleNumber, err)
	}
	if did, err := jobs.RunOnce(ctx); !did || err != nil {
		t.Fatalf("void print: %v %v", did, err)
	}
	if len(p.receipts) != 3 || p.receipts[2].Storno == nil || p.unps[2] != inv.SaleNumber {
		t.Fatalf("void printed as %+v with UNP %q", p.receipts[len(p.receipts)-1].Storno, p.unps[len(p.unps)-1])
	}
	next, err := invoices.Create(ctx, sale, fiscal.Caller{KeyID: "key_1", IdempotencyKey: "s3"})
	if err != nil || next.SaleNumber != "DT279013-0001-0000003" {
		t.Fatalf("sale after a void: UNP %q, %v", next.SaleNumber, err)
	}
}

// Without the printer's fiscal memory serial no UNP can be made: the
// invoice is refused as a temporary fault and takes no number.
func TestNoSerialRefusesAndTakesNoNumber(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newFake()
	p.fmErr = errors.New("printer offline")
	invoices, _, ev := rig(t, p)
	if _, err := invoices.Create(ctx, sale, fiscal.Caller{KeyID: "k"}); !errors.Is(err, fiscal.ErrPrinterUnavailable) {
		t.Fatalf("err %v, want ErrPrinterUnavailable", err)
	}
	if n := len(ev.of(fiscal.EventInvoiceCreated)); n != 0 {
		t.Fatalf("%d invoice.created after a refusal", n)
	}
	p.mu.Lock()
	p.fmErr = nil
	p.mu.Unlock()
	inv, err := invoices.Create(ctx, sale, fiscal.Caller{KeyID: "k"})
	if err != nil || inv.Ordinal != 1 || !strings.HasSuffix(inv.SaleNumber, "-0000001") {
		t.Fatalf("after recovery: ordinal %d UNP %q %v", inv.Ordinal, inv.SaleNumber, err)
	}
}

// A printer that cannot take a UNP (a receipt printer) is refused per
// receipt, and the profile's requirements say a fiscal printer.
func TestNeedsSalePrinter(t *testing.T) {
	prof, err := bg.New(bg.Options{Operator: "0001", DeviceSerial: newFake().Serial})
	if err != nil {
		t.Fatal(err)
	}
	if r := prof.Requirements(); r.Printer != fiscal.PrinterFiscal || !r.PrinterRequired || r.Certificate || r.Registration {
		t.Errorf("requirements %+v", r)
	}
	_, err = prof.Print(context.Background(), plain{}, fiscal.Invoice{SaleNumber: "DT279013-0001-0000001"}, device.Receipt{ID: "x"})
	if !errors.Is(err, bg.ErrNoSaleNumber) {
		t.Errorf("err %v, want ErrNoSaleNumber", err)
	}
	for _, serial := range []string{"02279013", "DT27901", "dt279013"} {
		f := newFake()
		f.serial = serial
		prof, _ := bg.New(bg.Options{Operator: "0001", DeviceSerial: f.Serial})
		if err := prof.PrepareTx(context.Background(), nil, &fiscal.Invoice{}); err == nil {
			t.Errorf("serial %q accepted for a UNP", serial)
		}
	}
	if !errors.Is(err, bg.ErrNoSaleNumber) {
		t.Errorf("err %v, want ErrNoSaleNumber", err)
	}
	for _, op := range []string{"", "1", "00001", "00-1"} {
		if _, err := bg.New(bg.Options{Operator: op, DeviceSerial: newFake().Serial}); err == nil {
			t.Errorf("operator %q accepted", op)
		}
	}
}

type plain struct{}

func (plain) PrintReceipt(context.Context, device.Receipt) (device.ReceiptResult, error) {
	return device.ReceiptResult{}, nil
}

func TestUNPForm(t *testing.T) {
	if got := bg.UNP("DT279013", "0001", 7); got != "DT279013-0001-0000007" || !bg.UNPPattern.MatchString(got) {
		t.Errorf("UNP %q", got)
	}
}
