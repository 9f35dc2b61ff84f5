package api_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/apikey"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/iic"
	"github.com/posgate/posgate/idempotency"
	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
)

// fiscEnv is the API with fiscal wired, an admin key and a pos key bound
// to the imported test certificate.
type fiscEnv struct {
	h     http.Handler
	db    *store.DB
	keys  *apikey.Keys
	admin apikey.Created
	pos   apikey.Created
	cert  fiscal.Certificate
	idem  atomic.Int64
}

var fiscNow = time.Date(2026, 6, 12, 15, 5, 43, 0, time.UTC)

func newFiscEnv(t testing.TB) *fiscEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, filepath.Join(dir, "posgate.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	mk, err := masterkey.LoadOrCreate(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return fiscNow }
	certs := fiscal.NewCertificates(db, fiscal.CertificatesOptions{Master: mk, Now: now})
	sch, err := iic.New(iic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	invs := fiscal.NewInvoices(db, fiscal.InvoicesOptions{
		Scheme: sch, Certificates: certs, EmitTx: func(context.Context, *sql.Tx, string, any) error { return nil },
		TIN: "12345678", BusinessUnit: "bb123bb123", Device: "cc123cc123", Software: "ss123ss123", Now: now,
		Payments: func(_ context.Context, _ *sql.Tx, id string) (fiscal.LinkedPayment, error) {
			if id != "pay_1" {
				return fiscal.LinkedPayment{}, fiscal.ErrPaymentNotFound
			}
			return fiscal.LinkedPayment{ID: id, Type: "sale", Status: "completed", Amount: 5000, Currency: "EUR"}, nil
		},
	})
	e := &fiscEnv{db: db, keys: apikey.New(db, mk)}
	e.cert, err = certs.Import(ctx, fiscal.ImportParams{PKCS12: fiscFile(t, "openssl3-aes.p12"), Password: "posgate-test"})
	if err != nil {
		t.Fatal(err)
	}
	if e.admin, err = e.keys.Create(ctx, apikey.NewParams{Label: "admin", Role: apikey.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	if e.pos, err = e.keys.Create(ctx, apikey.NewParams{Label: "till", Role: apikey.RolePOS, CertificateID: e.cert.ID}); err != nil {
		t.Fatal(err)
	}
	e.h = api.NewHandler(api.Deps{Log: zerolog.Nop(), Store: db, Keys: e.keys, Idem: idempotency.New(db, mk),
		Certificates: certs, Invoices: invs})
	return e
}

func fiscFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "fiscal", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fiscResp struct {
	status int
	header http.Header
	body   []byte
}

func (r fiscResp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return m
}

// errorOf returns the error envelope's code and details.field.
func (r fiscResp) errorOf(t testing.TB) (code, field string) {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("status %d body %s: no error envelope", r.status, r.body)
	}
	code, _ = e["code"].(string)
	if d, ok := e["details"].(map[string]any); ok {
		field, _ = d["field"].(string)
	}
	return code, field
}

// do sends a request as key; POSTs get a fresh Idempotency-Key.
func (e *fiscEnv) do(method, path string, key apikey.Created, body string) fiscResp {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("X-Api-Key", key.ClientID+":"+key.ClientSecret)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprint("k-", e.idem.Add(1)))
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return fiscResp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func TestCertificatesAPI(t *testing.T) {
	e := newFiscEnv(t)
	p12 := func(file, pw string) string {
		b, _ := json.Marshal(map[string]string{"pkcs12": base64.StdEncoding.EncodeToString(fiscFile(t, file)), "password": pw})
		return string(b)
	}
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"ErrWrongPassword", p12("openssl3-aes.p12", "wrong"), 422, api.CodeCertificatePassword},
		{"ErrExpired", p12("expired.p12", "posgate-test"), 422, api.CodeCertificateExpired},
		{"ErrExists", p12("openssl3-aes.p12", "posgate-test"), 409, api.CodeCertificateExists},
		{"ErrNotBase64", `{"pkcs12":"%%%","password":"x"}`, 400, api.CodeValidation},
		{"ErrNothing", `{}`, 422, api.CodeCertificateInvalid},
		{"ErrUnknownField", `{"pfx":"x"}`, 400, api.CodeInvalidJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/certificates", e.admin, tc.body)
			if code, _ := r.errorOf(t); r.status != tc.status || code != tc.code {
				t.Fatalf("status %d code %s (%s), want %d %s", r.status, code, r.body, tc.status, tc.code)
			}
		})
	}
	t.Run("ErrPosKey", func(t *testing.T) {
		if r := e.do("GET", "/v1/certificates", e.pos, ""); r.status != 403 {
			t.Fatalf("status %d, want 403", r.status)
		}
	})
	r := e.do("GET", "/v1/certificates", e.admin, "")
	list, _ := r.json(t)["data"].([]any)
	if r.status != 200 || len(list) != 1 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	c := list[0].(map[string]any)
	if c["sha256_thumbprint"] != e.cert.Thumbprint || c["tin"] != "12345678" || c["status"] != "active" {
		t.Fatalf("listed %v", c)
	}
	if strings.Contains(string(r.body), "PRIVATE") {
		t.Fatal("a listing mentions a private key")
	}
	if r := e.do("GET", "/v1/certificates/"+e.cert.ID, e.admin, ""); r.status != 200 || r.json(t)["serial"] != e.cert.Serial {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/certificates/cert_nope", e.admin, ""); r.status != 404 {
		t.Fatalf("get unknown: %d", r.status)
	}
	if r := e.do("DELETE", "/v1/certificates/"+e.cert.ID, e.admin, ""); r.status != 200 || r.json(t)["status"] != "deactivated" {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	// A revoked certificate stops signing at once.
	r = e.do("POST", "/v1/invoices", e.pos, saleJSON(100))
	if code, _ := r.errorOf(t); r.status != 409 || code != api.CodeCertificateInactive {
		t.Fatalf("invoice after deactivation: %d %s, want 409 %s", r.status, r.body, api.CodeCertificateInactive)
	}
}

func saleJSON(amount int64) string {
	return fmt.Sprintf(`{"type":"sale","items":[{"name":"Coffee","quantity":1,"unit_price":%d,"vat_rate":21}],
		"payments":[{"type":"cash","amount":%d}]}`, amount, amount)
}

func TestInvoicesAPI(t *testing.T) {
	e := newFiscEnv(t)
	r := e.do("POST", "/v1/invoices", e.pos, `{"type":"sale","items":[
		{"name":"Cheese","quantity":1.5,"unit_price":1999,"vat_rate":21,"discount":100},
		{"name":"Milk","quantity":2,"unit_price":110,"vat_rate":0}],
		"payments":[{"type":"card","amount":3119,"payment_id":"pay_1"}]}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	inv := r.json(t)
	sig := inv["fiscal_signature"].(map[string]any)
	for _, k := range []string{"scheme", "code", "signature", "signed_string", "verify_url", "certificate_serial", "certificate_sha256"} {
		if s, _ := sig[k].(string); s == "" {
			t.Fatalf("fiscal_signature.%s is empty: %v", k, sig)
		}
	}
	if got, want := inv["totals"].(map[string]any)["total"], float64(3119); got != want {
		t.Fatalf("total=%v, want %v", got, want)
	}
	if got := inv["items"].([]any)[0].(map[string]any)["quantity"]; got != 1.5 {
		t.Fatalf("quantity=%v, want the JSON number 1.5", got)
	}
	id := inv["id"].(string)
	if r := e.do("GET", "/v1/invoices/"+id, e.pos, ""); r.status != 200 || !bytes.Contains(r.body, []byte(sig["code"].(string))) {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/invoices?limit=10", e.pos, ""); r.status != 200 || len(r.json(t)["data"].([]any)) != 1 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/invoices?since=yesterday", e.pos, ""); r.status != 400 {
		t.Fatalf("list since=yesterday: %d, want 400", r.status)
	}
	qr := e.do("GET", "/v1/invoices/"+id+"/qr.png", e.pos, "")
	if qr.status != 200 || qr.header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(qr.body, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("qr: %d %s %.8q", qr.status, qr.header.Get("Content-Type"), qr.body)
	}
	if r := e.do("GET", "/v1/invoices/inv_nope/qr.png", e.pos, ""); r.status != 404 {
		t.Fatalf("qr of unknown: %d", r.status)
	}
}

func TestInvoicesAPIErrors(t *testing.T) {
	e := newFiscEnv(t)
	ctx := context.Background()
	unbound, err := e.keys.Create(ctx, apikey.NewParams{Label: "unbound", Role: apikey.RolePOS})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		key    apikey.Created
		body   string
		status int
		code   string
		field  string
	}{
		{"QuantityDecimals", e.pos, strings.Replace(saleJSON(100), `"quantity":1`, `"quantity":1.2345`, 1), 400, api.CodeValidation, "items[0].quantity"},
		{"QuantityString", e.pos, strings.Replace(saleJSON(100), `"quantity":1`, `"quantity":"1"`, 1), 400, api.CodeInvalidJSON, "items[0].quantity"},
		{"PriceFloat", e.pos, strings.Replace(saleJSON(100), `"unit_price":100`, `"unit_price":1.5`, 1), 400, api.CodeInvalidJSON, "items[0].unit_price"},
		{"Rate", e.pos, strings.Replace(saleJSON(100), `"vat_rate":21`, `"vat_rate":19`, 1), 422, api.CodeValidation, "items[0].vat_rate"},
		{"UnknownField", e.pos, strings.Replace(saleJSON(100), `"type"`, `"tip":1,"type"`, 1), 400, api.CodeInvalidJSON, "tip"},
		{"Underpaid", e.pos, strings.Replace(saleJSON(100), `"amount":100`, `"amount":99`, 1), 400, api.CodeValidation, "payments"},
		{"NoCertificate", unbound, saleJSON(100), 409, api.CodeNoCertificate, ""},
		{"OtherCertificate", e.pos, strings.Replace(saleJSON(100), `"type"`, `"certificate_id":"cert_b","type"`, 1), 403, api.CodeCertificateNotBound, "certificate_id"},
		{"VoidUnknown", e.pos, `{"type":"void","original_invoice_id":"inv_x"}`, 400, api.CodeValidation, "original_invoice_id"},
		// Issue 11 part 3: a card payment links a real, matching payment.
		{"CardPaymentUnknown", e.pos, strings.Replace(saleJSON(100), `"type":"cash","amount":100`, `"type":"card","amount":100,"payment_id":"pay_doesnotexist"`, 1), 422, api.CodeValidation, "payments[0].payment_id"},
		{"CardPaymentTooMuch", e.pos, strings.Replace(saleJSON(6000), `"type":"cash","amount":6000`, `"type":"card","amount":6000,"payment_id":"pay_1"`, 1), 422, api.CodeValidation, "payments[0].amount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/invoices", tc.key, tc.body)
			code, field := r.errorOf(t)
			if r.status != tc.status || code != tc.code || field != tc.field {
				t.Fatalf("%d %s field %q (%s), want %d %s field %q", r.status, code, field, r.body, tc.status, tc.code, tc.field)
			}
		})
	}
	t.Run("IdempotencyKeyRequired", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/v1/invoices", strings.NewReader(saleJSON(100)))
		req.Header.Set("X-Api-Key", e.pos.ClientID+":"+e.pos.ClientSecret)
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), api.CodeIdempotencyMissing) {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
	var n int
	if err := e.db.Read.QueryRow("SELECT count(*) FROM invoices").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d invoices after refused requests (%v), want 0", n, err)
	}
}

// FuzzInvoiceJSON posts arbitrary bodies to POST /v1/invoices: never a
// 5xx, always the JSON envelope on refusal, and a 201 only for a body
// that decodes to a valid invoice.
func FuzzInvoiceJSON(f *testing.F) {
	f.Add(saleJSON(100))
	f.Add(`{"type":"refund","original_invoice_id":"x","items":[],"payments":[]}`)
	f.Add(`{"type":"sale","items":[{"name":"a","quantity":99999999999999999999,"unit_price":9223372036854775807,"vat_rate":21}],"payments":[{"type":"cash","amount":1}]}`)
	f.Add(`{"type":"sale","items":[{"name":"a","quantity":-0.001,"unit_price":1,"vat_rate":1e2}],"payments":null}`)
	f.Add(`{"type":"void","original_invoice_id":"inv_1"} trailing`)
	f.Add(`{"items":[{"quantity":1.0,"vat_rate":"21"}]}`)
	e := newFiscEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		r := e.do("POST", "/v1/invoices", e.pos, body)
		if r.status >= 500 {
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
		if r.status != 201 {
			r.errorOf(t)
			return
		}
		inv := r.json(t)
		if _, ok := inv["fiscal_signature"].(map[string]any)["code"].(string); !ok {
			t.Fatalf("201 without a signature: %s", r.body)
		}
	})
}

// TestInvoicesAPIConcurrent posts invoices from many clients at once:
// every one is created, numbered 1…n without a gap or a duplicate, and a
// retry with the same Idempotency-Key returns the same invoice.
func TestInvoicesAPIConcurrent(t *testing.T) {
	e := newFiscEnv(t)
	const n = 24
	type result struct {
		status int
		ord    float64
		id     string
	}
	results := make(chan result, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each request is sent twice with one key, concurrently.
			var inner sync.WaitGroup
			for range 2 {
				inner.Add(1)
				go func() {
					defer inner.Done()
					req := httptest.NewRequest("POST", "/v1/invoices", strings.NewReader(saleJSON(100+int64(i))))
					req.Header.Set("X-Api-Key", e.pos.ClientID+":"+e.pos.ClientSecret)
					req.Header.Set("Idempotency-Key", fmt.Sprint("conc-", i))
					rec := httptest.NewRecorder()
					e.h.ServeHTTP(rec, req)
					var inv struct {
						ID      string  `json:"id"`
						Ordinal float64 `json:"ordinal"`
					}
					_ = json.Unmarshal(rec.Body.Bytes(), &inv)
					results <- result{rec.Code, inv.Ordinal, inv.ID}
				}()
			}
			inner.Wait()
		}()
	}
	wg.Wait()
	close(results)
	seen := map[float64]string{}
	for r := range results {
		if r.status != 201 {
			t.Fatalf("status %d", r.status)
		}
		if id, ok := seen[r.ord]; ok && id != r.id {
			t.Fatalf("ordinal %v given to %s and %s", r.ord, id, r.id)
		}
		seen[r.ord] = r.id
	}
	for i := 1; i <= n; i++ {
		if _, ok := seen[float64(i)]; !ok {
			t.Fatalf("ordinal %d missing; got %v", i, seen)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d ordinals, want %d", len(seen), n)
	}
}

func TestHealthzReportsCertificates(t *testing.T) {
	e := newFiscEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	mk, err := masterkey.LoadOrCreate(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	// Two weeks before the test certificate expires.
	certs := fiscal.NewCertificates(e.db, fiscal.CertificatesOptions{Master: mk,
		Now: func() time.Time { return e.cert.NotAfter.Add(-14 * 24 * time.Hour) }})
	h := api.NewHandler(api.Deps{Log: zerolog.Nop(), Store: e.db, Keys: e.keys, Idem: idempotency.New(e.db, mk), Health: certs.Health})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil).WithContext(ctx))
	var body struct {
		Certificates struct {
			Status       string           `json:"status"`
			Active       int              `json:"active"`
			ExpiringSoon []map[string]any `json:"expiring_soon"`
		} `json:"certificates"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	c := body.Certificates
	if rec.Code != 200 || c.Status != "warning" || c.Active != 1 || len(c.ExpiringSoon) != 1 || c.ExpiringSoon[0]["id"] != e.cert.ID {
		t.Fatalf("healthz %d %s", rec.Code, rec.Body)
	}
}

// A key is bound only to a certificate that exists and is active: an
// unknown or deactivated certificate_id is a 422 naming the field, and no
// key is made.
func TestAPIKeyCertificateMustExist(t *testing.T) {
	e := newFiscEnv(t)
	count := func() int {
		var n int
		if err := e.db.Read.QueryRow("SELECT count(*) FROM api_keys").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	r := e.do("POST", "/v1/api-keys", e.admin, `{"label":"till 2","role":"pos","certificate_id":"cert_doesnotexist"}`)
	if code, field := r.errorOf(t); r.status != 422 || code != api.CodeValidation || field != "certificate_id" {
		t.Fatalf("unknown certificate: %d %s", r.status, r.body)
	}
	if r := e.do("DELETE", "/v1/certificates/"+e.cert.ID, e.admin, ""); r.status != 200 {
		t.Fatalf("deactivate: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/api-keys", e.admin, fmt.Sprintf(`{"label":"till 3","role":"pos","certificate_id":%q}`, e.cert.ID))
	if code, field := r.errorOf(t); r.status != 422 || code != api.CodeValidation || field != "certificate_id" {
		t.Fatalf("deactivated certificate: %d %s", r.status, r.body)
	}
	if got := count(); got != before {
		t.Fatalf("%d keys after refused creates, want %d", got, before)
	}
}
