package api_test

import (
	"fmt"
	"testing"
	"time"
)

// FuzzCertificateImport posts arbitrary bodies to POST /v1/certificates:
// never a 5xx, and every refusal is the JSON envelope with a code.
func FuzzCertificateImport(f *testing.F) {
	for _, s := range []string{
		`{"pkcs12":"AAAA","password":"x"}`,
		`{"pkcs12":"not base64!","password":""}`,
		`{"certificate_pem":"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----","private_key_pem":""}`,
		`{"pkcs12":"AAAA","certificate_pem":"x"}`,
		`{"password":12}`,
		`{}`,
	} {
		f.Add(s)
	}
	e := newFiscEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		r := e.do("POST", "/v1/certificates", e.admin, body)
		if r.status >= 500 {
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
		if r.status != 201 {
			r.errorOf(t)
		}
	})
}

// FuzzPrinterCash posts arbitrary bodies to POST /v1/printers/{id}/cash
// with no printer configured: the body is judged first, so every refusal
// is a 400 naming the problem, a valid body gets 404, and none a 5xx.
func FuzzPrinterCash(f *testing.F) {
	for _, s := range []string{`{"type":"in","amount":100}`, `{"type":"out","amount":-5}`, `{"type":1}`, `[]`, `{"amount":1e99}`} {
		f.Add(s)
	}
	e := newEnv(f)
	var n int
	f.Fuzz(func(t *testing.T, body string) {
		n++
		r := e.do(t, "POST", "/v1/printers/p1/cash", &e.pos, body, "Idempotency-Key", fmt.Sprintf("cash-%d-%d", time.Now().UnixNano(), n))
		if r.status >= 500 {
			t.Fatalf("status %d for %q: %s", r.status, body, r.body)
		}
		code, msg := r.errorCode(t)
		if code == "" || msg == "" || (r.status != 400 && r.status != 404) {
			t.Fatalf("status %d code %q: %s", r.status, code, r.body)
		}
	})
}
