package fiscal_test

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

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/iic"
	"github.com/posgate/posgate/store"
)

// events returns the data of every event of type typ, in order.
func events(t testing.TB, db *store.DB, typ string) []map[string]any {
	t.Helper()
	rows, err := db.Read.Query("SELECT data FROM outbox_events WHERE type = ? ORDER BY seq", typ)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// env is a store with the example certificate imported and Invoices over it.
type env struct {
	db    *store.DB
	certs *fiscal.Certificates
	inv   *fiscal.Invoices
	cert  fiscal.Certificate
	clk   *clock
	sch   *iic.Scheme
	// pays are the card payments invoices may link (fiscal.PaymentReader
	// fake); readPays, when set, replaces it.
	pays     map[string]fiscal.LinkedPayment
	readPays fiscal.PaymentReader
}

// readPayment is the env's fiscal.PaymentReader.
func (e *env) readPayment(ctx context.Context, tx *sql.Tx, id string) (fiscal.LinkedPayment, error) {
	if e.readPays != nil {
		return e.readPays(ctx, tx, id)
	}
	p, ok := e.pays[id]
	if !ok {
		return fiscal.LinkedPayment{}, fiscal.ErrPaymentNotFound
	}
	return p, nil
}

func newEnv(t testing.TB, printerID string) *env {
	t.Helper()
	return newEnvOn(t, openStore(t), printerID)
}

func newEnvOn(t testing.TB, db *store.DB, printerID string) *env {
	t.Helper()
	clk := &clock{time.Date(2026, 6, 12, 15, 5, 43, 0, time.UTC)}
	certs := newCerts(t, db, masterKey(t), clk.Now)
	sch, err := iic.New(iic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: db, certs: certs, clk: clk, sch: sch, cert: importP12(t, certs), pays: map[string]fiscal.LinkedPayment{
		"pay_1": {ID: "pay_1", Type: "sale", Status: "completed", Amount: 1_000_000, Currency: "EUR"},
		"p":     {ID: "p", Type: "sale", Status: "completed", Amount: 1_000_000, Currency: "EUR"},
	}}
	e.inv = fiscal.NewInvoices(db, fiscal.InvoicesOptions{
		Scheme: sch, Certificates: certs, EmitTx: fiscal.EmitToOutbox,
		TIN: "12345678", BusinessUnit: "bb123bb123", Device: "cc123cc123", Software: "ss123ss123",
		VATGroups: map[int64]int{2100: 1, 950: 2, 0: 3},
		Location:  mustZone(t, "Europe/Podgorica"), PrinterID: printerID, PrintAttempts: 3, Now: clk.Now,
		Payments: e.readPayment,
	})
	return e
}

func mustZone(t testing.TB, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func (e *env) caller(idem string) fiscal.Caller {
	return fiscal.Caller{KeyID: "key_1", CertificateID: e.cert.ID, IdempotencyKey: idem}
}

func sale(total int64) fiscal.NewInvoice {
	return fiscal.NewInvoice{
		Type:     fiscal.TypeSale,
		Items:    []fiscal.NewItem{{Name: "Coffee", Quantity: "1", UnitPrice: total, VATRate: "21"}},
		Payments: []fiscal.NewPayment{{Type: fiscal.PayCash, Amount: total}},
	}
}

func TestCreateSale(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	req := fiscal.NewInvoice{
		Type: fiscal.TypeSale,
		Items: []fiscal.NewItem{
			{Name: "Cheese", Quantity: "0.333", UnitPrice: 1999, VATRate: "21"}, // 665.667 → 666
			{Name: "Milk", Quantity: "2", UnitPrice: 110, VATRate: "9.5", Discount: 20},
			{Name: "Bread", Quantity: "1.5", UnitPrice: 101, VATRate: "21"}, // 151.5 → 152 (half away)
		},
		Payments: []fiscal.NewPayment{{Type: fiscal.PayCard, Amount: 500, PaymentID: "pay_1"}, {Type: fiscal.PayCash, Amount: 600}},
	}
	inv, err := e.inv.Create(ctx, req, e.caller("k1"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := inv.Items[0].Amount, int64(666); got != want {
		t.Fatalf("items[0].Amount=%v, want %v", got, want)
	}
	if got, want := inv.Items[2].Amount, int64(152); got != want {
		t.Fatalf("items[2].Amount=%v, want %v", got, want)
	}
	if got, want := inv.Items[1].Amount, int64(200); got != want {
		t.Fatalf("items[1].Amount=%v, want %v", got, want)
	}
	// 21 %: gross 818, net 818/1.21 = 676.03 → 676, VAT 142.
	// 9.5 %: gross 200, net 182.648 → 183, VAT 17.
	want := fiscal.Totals{Total: 1018, Net: 859, VAT: 159, Paid: 1100, Change: 82, PerRate: []fiscal.RateTotal{
		{VATRate: "21", Gross: 818, Net: 676, VAT: 142}, {VATRate: "9.5", Gross: 200, Net: 183, VAT: 17}}}
	if got := fmt.Sprint(inv.Totals); got != fmt.Sprint(want) {
		t.Fatalf("Totals=%v, want %v", got, want)
	}
	if got, want := inv.Number, "bb123bb123/1/2026/cc123cc123"; got != want {
		t.Fatalf("Number=%v, want %v", got, want)
	}
	if got, want := inv.Signature.SignedString, "12345678|2026-06-12T17:05:43+02:00|1|bb123bb123|cc123cc123|ss123ss123|10.18"; got != want {
		t.Fatalf("SignedString=%v, want %v", got, want)
	}
	if inv.Signature.CertificateSHA256 != e.cert.Thumbprint || inv.Signature.CertificateSerial != e.cert.Serial {
		t.Fatalf("Signature certificate=%s/%s, want %s/%s", inv.Signature.CertificateSerial, inv.Signature.CertificateSHA256, e.cert.Serial, e.cert.Thumbprint)
	}
	if err := e.sch.Verify(exampleKey(t).Public(), inv.Signature); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	got, err := e.inv.Get(ctx, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, got), mustJSON(t, inv); a != b {
		t.Fatalf("Get=\n%s, want\n%s", a, b)
	}
	evs := events(t, e.db, fiscal.EventInvoiceCreated)
	if len(evs) != 1 || evs[0]["id"] != inv.ID || evs[0]["fiscal_signature"].(map[string]any)["code"] != inv.Signature.Code {
		t.Fatalf("invoice.created events=%v, want one carrying the invoice and its signature", evs)
	}
	// Same idempotency key: the same invoice, nothing new.
	again, err := e.inv.Create(ctx, req, e.caller("k1"))
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != inv.ID || len(events(t, e.db, fiscal.EventInvoiceCreated)) != 1 {
		t.Fatalf("replay created %s, want %s and no new event", again.ID, inv.ID)
	}
}

// TestSignsPublicVector issues the specification's example invoice
// through the whole path (numbering, certificate, scheme) and gets the
// published IIC.
func TestSignsPublicVector(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	e.clk.t = time.Date(2019, 6, 12, 15, 5, 43, 0, time.UTC) // 17:05:43+02:00
	key := exampleKey(t)
	cert, err := e.certs.Import(ctx, fiscal.ImportParams{PrivateKeyPEM: keyPEM(t, key),
		CertificatePEM: selfSigned(t, key, "2019", "12345678", e.clk.t.Add(-time.Hour), e.clk.t.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	// 9951 numbers used this year, so this invoice is 9952.
	if _, err := e.db.Write.Exec("INSERT INTO invoice_counters VALUES ('bb123bb123', 'cc123cc123', 2019, 9951)"); err != nil {
		t.Fatal(err)
	}
	inv, err := e.inv.Create(ctx, sale(9901), fiscal.Caller{KeyID: "k", CertificateID: cert.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := inv.Signature.SignedString, "12345678|2019-06-12T17:05:43+02:00|9952|bb123bb123|cc123cc123|ss123ss123|99.01"; got != want {
		t.Fatalf("SignedString=%v, want %v", got, want)
	}
	if got, want := inv.Signature.Code, "E4033D471FEEA47A3C664B15C669C709"; got != want {
		t.Fatalf("IIC=%v, want %v", got, want)
	}
}

func mustJSON(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTotalsThousandsAndOffset(t *testing.T) {
	e := newEnv(t, "")
	e.clk.t = time.Date(2026, 1, 15, 9, 30, 0, 0, time.UTC)
	inv, err := e.inv.Create(context.Background(), sale(123456789), e.caller(""))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := inv.Signature.SignedString, "12345678|2026-01-15T10:30:00+01:00|1|bb123bb123|cc123cc123|ss123ss123|1234567.89"; got != want {
		t.Fatalf("SignedString=%v, want %v", got, want)
	}
	if !strings.Contains(inv.Signature.VerifyURL, "prc=1234567.89") || !strings.Contains(inv.Signature.VerifyURL, "crtd=2026-01-15T10%3A30%3A00%2B01%3A00") {
		t.Fatalf("VerifyURL=%s, want prc=1234567.89 and the escaped offset", inv.Signature.VerifyURL)
	}
}

func TestNumbering(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	// A refused invoice (validation, or the certificate) uses no number.
	if _, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "sale"}, e.caller("")); err == nil {
		t.Fatal("want a validation error")
	}
	for i, want := range []int64{1, 2} {
		inv, err := e.inv.Create(ctx, sale(100), e.caller(fmt.Sprint("n", i)))
		if err != nil {
			t.Fatal(err)
		}
		if inv.Ordinal != want {
			t.Fatalf("Ordinal=%d, want %d", inv.Ordinal, want)
		}
	}
	// A new year starts at 1 again (local year: 23:30 UTC on 31 Dec is
	// already January in Podgorica).
	e.clk.t = time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC)
	inv, err := e.inv.Create(ctx, sale(100), e.caller("ny"))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Ordinal != 1 || inv.Year != 2027 {
		t.Fatalf("after new year: ordinal %d year %d, want 1 2027", inv.Ordinal, inv.Year)
	}
}

// TestConcurrentNumbering creates invoices from many goroutines: the
// numbers are 1…n, each once.
func TestConcurrentNumbering(t *testing.T) {
	e := newEnv(t, "")
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.inv.Create(context.Background(), sale(100+int64(i)), e.caller(fmt.Sprint("c", i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, err := e.db.Read.Query("SELECT ordinal FROM invoices ORDER BY ordinal")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var want int64 = 1
	for rows.Next() {
		var got int64
		if err := rows.Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("ordinal %d, want %d: a gap or a duplicate", got, want)
		}
		want++
	}
	if want-1 != n {
		t.Fatalf("%d invoices, want %d", want-1, n)
	}
	if got := len(events(t, e.db, fiscal.EventInvoiceCreated)); got != n {
		t.Fatalf("%d invoice.created events, want %d", got, n)
	}
}

func TestCertificateBinding(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	key := testKeyB(t)
	b, err := e.certs.Import(ctx, fiscal.ImportParams{
		CertificatePEM: selfSigned(t, key, "B", "12345678", e.clk.t.Add(-time.Hour), e.clk.t.Add(24*time.Hour)), PrivateKeyPEM: keyPEM(t, key)})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("ErrCertificateNotBound", func(t *testing.T) {
		req := sale(100)
		req.CertificateID = b.ID // the key is bound to A
		if _, err := e.inv.Create(ctx, req, e.caller("")); !errors.Is(err, fiscal.ErrCertificateNotBound) {
			t.Fatalf("err=%v, want ErrCertificateNotBound", err)
		}
	})
	t.Run("SignsWithBound", func(t *testing.T) {
		inv, err := e.inv.Create(ctx, sale(100), fiscal.Caller{KeyID: "key_b", CertificateID: b.ID})
		if err != nil {
			t.Fatal(err)
		}
		if inv.Signature.CertificateSHA256 != b.Thumbprint || inv.CertificateID != b.ID {
			t.Fatalf("signed with %s, want B %s", inv.Signature.CertificateSHA256, b.Thumbprint)
		}
		if err := e.sch.Verify(&key.PublicKey, inv.Signature); err != nil {
			t.Fatalf("B's signature does not verify with B's key: %v", err)
		}
		if err := e.sch.Verify(exampleKey(t).Public(), inv.Signature); err == nil {
			t.Fatal("B's signature verifies with A's key")
		}
	})
	t.Run("ErrNoCertificate", func(t *testing.T) {
		if _, err := e.inv.Create(ctx, sale(100), fiscal.Caller{KeyID: "key_x"}); !errors.Is(err, fiscal.ErrNoCertificate) {
			t.Fatalf("err=%v, want ErrNoCertificate", err)
		}
	})
	t.Run("ErrTINMismatch", func(t *testing.T) {
		c, err := e.certs.Import(ctx, fiscal.ImportParams{TIN: "99999999",
			CertificatePEM: selfSigned(t, key, "C", "1", e.clk.t.Add(-time.Hour), e.clk.t.Add(24*time.Hour)), PrivateKeyPEM: keyPEM(t, key)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.inv.Create(ctx, sale(100), fiscal.Caller{KeyID: "key_c", CertificateID: c.ID}); !errors.Is(err, fiscal.ErrTINMismatch) {
			t.Fatalf("err=%v, want ErrTINMismatch", err)
		}
	})
	t.Run("ErrCertificateInactive", func(t *testing.T) {
		if _, err := e.certs.Deactivate(ctx, e.cert.ID); err != nil {
			t.Fatal(err)
		}
		_, err := e.inv.Create(ctx, sale(100), e.caller("after-revoke"))
		if !errors.Is(err, fiscal.ErrCertificateInactive) {
			t.Fatalf("err=%v, want ErrCertificateInactive", err)
		}
	})
	// Refused invoices used no numbers: the two made so far are 1 and 2.
	var last int64
	if err := e.db.Read.QueryRow("SELECT last FROM invoice_counters").Scan(&last); err != nil || last != 1 {
		t.Fatalf("counter=%d (%v), want 1", last, err)
	}
}

func TestRefundAndVoid(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	orig, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "sale",
		Items:    []fiscal.NewItem{{Name: "A", Quantity: "2", UnitPrice: 500, VATRate: "21"}},
		Payments: []fiscal.NewPayment{{Type: "cash", Amount: 2000}}}, e.caller("s"))
	if err != nil {
		t.Fatal(err)
	}
	if orig.Totals.Change != 1000 {
		t.Fatalf("Change=%d, want 1000", orig.Totals.Change)
	}
	refund := fiscal.NewInvoice{Type: "refund", OriginalInvoiceID: orig.ID,
		Items:    []fiscal.NewItem{{Name: "A", Quantity: "1", UnitPrice: 500, VATRate: "21"}},
		Payments: []fiscal.NewPayment{{Type: "cash", Amount: 500}}}
	r, err := e.inv.Create(ctx, refund, e.caller("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Totals.Total != -500 || r.Items[0].Amount != -500 || r.Payments[0].Amount != -500 || !strings.HasSuffix(r.Signature.SignedString, "|-5.00") {
		t.Fatalf("refund totals %+v items %+v signed %q, want negative amounts", r.Totals, r.Items, r.Signature.SignedString)
	}
	t.Run("ErrVoidAfterRefund", func(t *testing.T) {
		_, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "void", OriginalInvoiceID: orig.ID}, e.caller("v0"))
		if !errors.Is(err, fiscal.ErrAlreadyVoided) {
			t.Fatalf("err=%v, want ErrAlreadyVoided", err)
		}
	})
	t.Run("ErrRefundTooMuch", func(t *testing.T) {
		big := refund
		big.Items = []fiscal.NewItem{{Name: "A", Quantity: "2", UnitPrice: 500, VATRate: "21"}}
		big.Payments = []fiscal.NewPayment{{Type: "cash", Amount: 1000}}
		_, err := e.inv.Create(ctx, big, e.caller("r2"))
		var ve *fiscal.ValidationError
		if !errors.As(err, &ve) || ve.Field != "items" {
			t.Fatalf("err=%v, want a validation error on items", err)
		}
	})
	t.Run("Void", func(t *testing.T) {
		s2, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "sale",
			Items:    []fiscal.NewItem{{Name: "B", Quantity: "1", UnitPrice: 750, VATRate: "9.5"}},
			Payments: []fiscal.NewPayment{{Type: "card", Amount: 750, PaymentID: "p"}}}, e.caller("s2"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "void", OriginalInvoiceID: s2.ID}, e.caller("v2"))
		if err != nil {
			t.Fatal(err)
		}
		if v.Totals.Total != -750 || v.Payments[0].Amount != -750 || v.Payments[0].PaymentID != "p" || v.Items[0].Name != "B" {
			t.Fatalf("void=%+v, want the sale negated", v)
		}
		if _, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "void", OriginalInvoiceID: s2.ID}, e.caller("v3")); !errors.Is(err, fiscal.ErrAlreadyVoided) {
			t.Fatalf("second void: %v, want ErrAlreadyVoided", err)
		}
		if _, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "void", OriginalInvoiceID: v.ID}, e.caller("v4")); err == nil {
			t.Fatal("voiding a void succeeded")
		}
	})
	t.Run("VoidWithChange", func(t *testing.T) {
		s3, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "sale",
			Items:    []fiscal.NewItem{{Name: "C", Quantity: "1", UnitPrice: 900, VATRate: "21"}},
			Payments: []fiscal.NewPayment{{Type: "cash", Amount: 1000}}}, e.caller("s3"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.inv.Create(ctx, fiscal.NewInvoice{Type: "void", OriginalInvoiceID: s3.ID}, e.caller("v5"))
		if err != nil {
			t.Fatal(err)
		}
		if v.Totals.Total != -900 || v.Totals.Paid != -900 || v.Totals.Change != 0 {
			t.Fatalf("void totals=%+v, want -900 paid back, no change", v.Totals)
		}
	})
}

func TestValidationNamesField(t *testing.T) {
	e := newEnv(t, "")
	item := func(mod func(*fiscal.NewItem)) fiscal.NewInvoice {
		r := sale(100)
		mod(&r.Items[0])
		return r
	}
	for _, tc := range []struct {
		name  string
		req   fiscal.NewInvoice
		field string
	}{
		{"Type", fiscal.NewInvoice{Type: "gift"}, "type"},
		{"NoItems", fiscal.NewInvoice{Type: "sale", Payments: sale(1).Payments}, "items"},
		{"Name", item(func(i *fiscal.NewItem) { i.Name = " " }), "items[0].name"},
		{"NameControl", item(func(i *fiscal.NewItem) { i.Name = "a\nb" }), "items[0].name"},
		{"QuantityDecimals", item(func(i *fiscal.NewItem) { i.Quantity = "1.0001" }), "items[0].quantity"},
		{"QuantityZero", item(func(i *fiscal.NewItem) { i.Quantity = "0" }), "items[0].quantity"},
		{"QuantityExponent", item(func(i *fiscal.NewItem) { i.Quantity = "1e3" }), "items[0].quantity"},
		{"QuantityMissing", item(func(i *fiscal.NewItem) { i.Quantity = "" }), "items[0].quantity"},
		{"PriceNegative", item(func(i *fiscal.NewItem) { i.UnitPrice = -1 }), "items[0].unit_price"},
		{"RateUnknown", item(func(i *fiscal.NewItem) { i.VATRate = "20" }), "items[0].vat_rate"},
		{"RateDecimals", item(func(i *fiscal.NewItem) { i.VATRate = "9.555" }), "items[0].vat_rate"},
		{"Discount", item(func(i *fiscal.NewItem) { i.Discount = 101 }), "items[0].discount"},
		{"NoPayments", fiscal.NewInvoice{Type: "sale", Items: sale(1).Items}, "payments"},
		{"PaymentType", fiscal.NewInvoice{Type: "sale", Items: sale(100).Items, Payments: []fiscal.NewPayment{{Type: "iou", Amount: 100}}}, "payments[0].type"},
		{"PaymentAmount", fiscal.NewInvoice{Type: "sale", Items: sale(100).Items, Payments: []fiscal.NewPayment{{Type: "cash"}}}, "payments[0].amount"},
		{"CashPaymentID", fiscal.NewInvoice{Type: "sale", Items: sale(100).Items, Payments: []fiscal.NewPayment{{Type: "cash", Amount: 100, PaymentID: "x"}}}, "payments[0].payment_id"},
		{"Underpaid", fiscal.NewInvoice{Type: "sale", Items: sale(100).Items, Payments: []fiscal.NewPayment{{Type: "cash", Amount: 99}}}, "payments"},
		{"CardChange", fiscal.NewInvoice{Type: "sale", Items: sale(100).Items, Payments: []fiscal.NewPayment{{Type: "card", Amount: 101}}}, "payments"},
		{"SaleWithOriginal", func() fiscal.NewInvoice { r := sale(1); r.OriginalInvoiceID = "x"; return r }(), "original_invoice_id"},
		{"RefundWithoutOriginal", func() fiscal.NewInvoice { r := sale(1); r.Type = "refund"; return r }(), "original_invoice_id"},
		{"RefundUnknownOriginal", func() fiscal.NewInvoice { r := sale(1); r.Type = "refund"; r.OriginalInvoiceID = "inv_x"; return r }(), "original_invoice_id"},
		{"VoidWithItems", fiscal.NewInvoice{Type: "void", OriginalInvoiceID: "x", Items: sale(1).Items}, "items"},
		{"Currency", func() fiscal.NewInvoice { r := sale(1); r.Currency = "USD"; return r }(), "currency"},
		{"ZeroTotal", fiscal.NewInvoice{Type: "sale", Items: sale(0).Items, Payments: sale(1).Payments}, "items"},
		{"NameTooLong", item(func(i *fiscal.NewItem) { i.Name = strings.Repeat("é", 73) }), "items[0].name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.inv.Create(context.Background(), tc.req, e.caller(""))
			var ve *fiscal.ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("err=%v, want a validation error on %s", err, tc.field)
			}
		})
	}
}

func TestList(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		e.clk.t = e.clk.t.Add(time.Second)
		inv, err := e.inv.Create(ctx, sale(100), e.caller(fmt.Sprint("l", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, inv.ID)
	}
	var got []string
	cursor := ""
	for range 10 {
		page, next, err := e.inv.List(ctx, fiscal.ListParams{Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, inv := range page {
			got = append(got, inv.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("paged list=%v, want %v", got, ids)
	}
	if _, _, err := e.inv.List(ctx, fiscal.ListParams{Cursor: "!!"}); !errors.Is(err, fiscal.ErrBadCursor) {
		t.Fatalf("bad cursor: %v, want ErrBadCursor", err)
	}
}
