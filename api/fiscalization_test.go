package api_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/idempotency"
	"github.com/posgate/posgate/masterkey"
)

// nopRegistrar is a Registrar these route tests never reach: the worker
// does not run here.
type nopRegistrar struct{}

func (nopRegistrar) Check(fiscal.Invoice, *fiscal.Invoice) error { return nil }
func (nopRegistrar) Build(context.Context, fiscal.Attempt) ([]byte, error) {
	return nil, &fiscal.RegistrationError{Class: fiscal.ClassRejected, Message: "not in this test"}
}
func (nopRegistrar) Send(context.Context, string, []byte) (string, []byte, error) {
	return "", nil, &fiscal.RegistrationError{Class: fiscal.ClassOffline, Message: "not in this test"}
}

func newRegEnv(t testing.TB) (*fiscEnv, *fiscal.Registrations) {
	t.Helper()
	e := newFiscEnv(t)
	mk, err := masterkey.LoadOrCreate(filepath.Join(t.TempDir(), "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	certs := fiscal.NewCertificates(e.db, fiscal.CertificatesOptions{Master: mk})
	reg := fiscal.NewRegistrations(e.db, fiscal.RegistrationsOptions{Registrar: nopRegistrar{}, Certificates: certs})
	e.h = api.NewHandler(api.Deps{Log: zerolog.Nop(), Store: e.db, Keys: e.keys, Idem: idempotency.New(e.db, mk),
		Registrations: reg})
	return e, reg
}

func TestFiscalRegistrationRoutes(t *testing.T) {
	e, _ := newRegEnv(t)
	count := func() int {
		var n int
		e.db.Read.QueryRow("SELECT COUNT(*) FROM fiscal_registrations").Scan(&n)
		return n
	}
	for _, tc := range []struct{ body, field string }{
		{`{"operation":"initial","amount":-1}`, "amount"},
		{`{"operation":"withdraw","amount":0}`, "amount"},
		{`{"operation":"open","amount":5}`, "operation"},
		{`{"operation":"initial","amount":"5"}`, "amount"},
		{`{"operation":"initial","amount":5,"extra":1}`, ""},
	} {
		r := e.do("POST", "/v1/fiscal/cash-deposits", e.pos, tc.body)
		code, field := r.errorOf(t)
		if r.status != 400 || (tc.field != "" && field != tc.field) {
			t.Errorf("%s: %d %s field %q", tc.body, r.status, code, field)
		}
	}
	if n := count(); n != 0 {
		t.Fatalf("%d registrations written by refused requests", n)
	}
	r := e.do("POST", "/v1/fiscal/cash-deposits", e.pos, `{"operation":"initial","amount":10000}`)
	dep := r.json(t)
	if r.status != 202 || dep["kind"] != fiscal.KindCashDeposit || dep["status"] != fiscal.RegPending {
		t.Fatalf("deposit: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/fiscal/registrations/"+dep["id"].(string), e.pos, ""); r.status != 200 {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/fiscal/tcr", e.pos, `{"internal_id":"till-1"}`); r.status != 403 {
		t.Fatalf("tcr with a pos key: %d", r.status)
	}
	// The admin key is bound to no certificate: nothing can sign.
	if r := e.do("POST", "/v1/fiscal/tcr", e.admin, `{"internal_id":"till-1"}`); r.status != 409 {
		t.Fatalf("tcr without a certificate: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v1/invoices/inv_nope/fiscalization/retry", e.admin, ""); r.status != 404 {
		t.Fatalf("retry of nothing: %d", r.status)
	}
	if r := e.do("POST", "/v1/invoices/"+dep["id"].(string)+"/fiscalization/retry", e.admin, ""); r.status != 409 {
		t.Fatalf("retry of a pending registration: %d %s", r.status, r.body)
	}
}

// FuzzCashDeposit posts arbitrary bodies to POST /v1/fiscal/cash-deposits:
// never a 5xx; a refusal is a 400 envelope and writes nothing.
func FuzzCashDeposit(f *testing.F) {
	for _, s := range []string{`{"operation":"initial","amount":100}`, `{"operation":"withdraw","amount":-5}`,
		`{"operation":1}`, `[]`, `{"amount":1e99}`, `{"operation":"initial","amount":100000000001}`} {
		f.Add(s)
	}
	e, _ := newRegEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		var before int
		e.db.Read.QueryRow("SELECT COUNT(*) FROM fiscal_registrations").Scan(&before)
		r := e.do("POST", "/v1/fiscal/cash-deposits", e.pos, body)
		if r.status >= 500 {
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
		if r.status != 202 {
			r.errorOf(t)
			var after int
			e.db.Read.QueryRow("SELECT COUNT(*) FROM fiscal_registrations").Scan(&after)
			if after != before {
				t.Fatalf("refused %q but wrote a registration", body)
			}
		}
	})
}

// FuzzTCRRegister posts arbitrary bodies to POST /v1/fiscal/tcr: never
// a 5xx, every refusal the JSON envelope, nothing written.
func FuzzTCRRegister(f *testing.F) {
	for _, s := range []string{`{"internal_id":"till-1"}`, `{"internal_id":"","valid_from":"2026-13-01"}`,
		`{"internal_id":"x","type":"kiosk"}`, `{"internal_id":1}`, `null`, `{"internal_id":"a","extra":true}`} {
		f.Add(s)
	}
	e, _ := newRegEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		r := e.do("POST", "/v1/fiscal/tcr", e.admin, body)
		if r.status >= 500 || r.status == 202 {
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
		r.errorOf(t)
		var n int
		e.db.Read.QueryRow("SELECT COUNT(*) FROM fiscal_registrations").Scan(&n)
		if n != 0 {
			t.Fatalf("%q wrote a registration", body)
		}
	})
}
