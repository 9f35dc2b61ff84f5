package api_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestInvoiceAnswerKeptInItsTransaction: an invoice and its kept answer
// (the idempotency record) commit together. While the record cannot be
// written, no invoice is created either (before, the invoice was
// committed and only its answer lost); once it can, the same key creates
// the invoice, and a retry gets the same bytes back, replayed.
func TestInvoiceAnswerKeptInItsTransaction(t *testing.T) {
	e := newFiscEnv(t)
	post := func() fiscResp {
		req := httptest.NewRequest(http.MethodPost, "/v1/invoices", strings.NewReader(saleJSON(250)))
		req.Header.Set("X-Api-Key", e.pos.ClientID+":"+e.pos.ClientSecret)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "till-1-sale-1")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		return fiscResp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	}
	count := func(table string) int {
		t.Helper()
		var n int
		if err := e.db.Read.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := e.db.Write.Exec(`CREATE TRIGGER refuse_answers BEFORE INSERT ON idempotency_keys
		BEGIN SELECT RAISE(ABORT, 'answers refused'); END`); err != nil {
		t.Fatal(err)
	}
	if r := post(); r.status < 500 {
		t.Fatalf("with answers refused: %d %s, want a 5xx", r.status, r.body)
	}
	if n := count("invoices"); n != 0 {
		t.Fatalf("%d invoices after the answer could not be kept, want 0", n)
	}
	if n := count("invoice_counters WHERE last > 0"); n != 0 {
		t.Fatalf("a number was used by a refused invoice")
	}
	if _, err := e.db.Write.Exec("DROP TRIGGER refuse_answers"); err != nil {
		t.Fatal(err)
	}
	first := post()
	if first.status != 201 || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("create: %d %v %s", first.status, first.header, first.body)
	}
	if n, k := count("invoices"), count("idempotency_keys WHERE status = 201"); n != 1 || k != 1 {
		t.Fatalf("%d invoices, %d kept answers, want 1 and 1", n, k)
	}
	again := post()
	if again.status != 201 || again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.body, first.body) {
		t.Fatalf("retry: %d replayed=%q body equal=%v", again.status, again.header.Get("Idempotent-Replayed"), bytes.Equal(again.body, first.body))
	}
	if n := count("invoices"); n != 1 {
		t.Fatalf("%d invoices after the retry, want 1", n)
	}
}
