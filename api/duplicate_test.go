package api_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
)

// TestPrinterDuplicate: POST /v1/printers/{id}/duplicate prints the
// printer's copy of its last receipt (6Dh) once per Idempotency-Key, emits
// receipt.duplicated, and is refused for a printer that is not fiscal.
func TestPrinterDuplicate(t *testing.T) {
	var drv *datecs.Printer
	e, sim := newPrinterEnvWith(t, func(d *api.Deps) {
		drv = d.Printers["p1"].(*datecs.Printer)
		d.ReceiptPrinters = map[string]api.ReceiptPrinter{"r1": nil}
	})
	duplicates := func() int {
		n := 0
		for _, d := range sim.Journal() {
			if d.Kind == printer.KindDuplicate {
				n++
			}
		}
		return n
	}

	t.Run("ErrNoReceipt", func(t *testing.T) {
		r := e.do(t, "POST", "/v1/printers/p1/duplicate", &e.pos, "", "Idempotency-Key", "dup-0")
		if r.status != 409 || !json.Valid(r.body) {
			t.Fatalf("status %d %s, want 409 (the printer refuses)", r.status, r.body)
		}
	})
	doc := device.Receipt{ID: "inv-dup", Header: device.ReceiptHeader{UniqueSaleNumber: "DT000600-0001-0000009"},
		Lines: []device.Line{{Item: device.Item{Name: "Tea", VATGroup: 2, UnitPrice: 250}}}}
	if _, err := drv.PrintReceipt(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
	t.Run("OKOncePerKey", func(t *testing.T) {
		first := e.do(t, "POST", "/v1/printers/p1/duplicate", &e.pos, "", "Idempotency-Key", "dup-1")
		again := e.do(t, "POST", "/v1/printers/p1/duplicate", &e.pos, "", "Idempotency-Key", "dup-1")
		if first.status != 201 || again.status != 201 || string(first.body) != string(again.body) {
			t.Fatalf("first %d %s, retry %d %s", first.status, first.body, again.status, again.body)
		}
		var b struct {
			PrinterID     string `json:"printer_id"`
			ReceiptNumber int    `json:"receipt_number"`
		}
		if err := json.Unmarshal(first.body, &b); err != nil || b.PrinterID != "p1" || b.ReceiptNumber != 1 {
			t.Fatalf("body %s, %v", first.body, err)
		}
		if n := duplicates(); n != 1 {
			t.Fatalf("%d duplicates printed for one key, want 1", n)
		}
		var n int
		var data string
		if err := e.db.Read.QueryRow(`SELECT COUNT(*), MAX(data) FROM outbox_events WHERE type = 'receipt.duplicated'`).Scan(&n, &data); err != nil || n != 1 {
			t.Fatalf("%d receipt.duplicated events, %v", n, err)
		}
		var ev struct {
			ReceiptNumber int `json:"receipt_number"`
		}
		if json.Unmarshal([]byte(data), &ev); ev.ReceiptNumber != 1 {
			t.Fatalf("event data %s", data)
		}
	})
	t.Run("ErrSecondCopy", func(t *testing.T) {
		r := e.do(t, "POST", "/v1/printers/p1/duplicate", &e.pos, "", "Idempotency-Key", "dup-2")
		if r.status != 409 || duplicates() != 1 {
			t.Fatalf("status %d %s, %d duplicates; the printer gives one copy per receipt", r.status, r.body, duplicates())
		}
	})
	t.Run("ErrNotFiscal", func(t *testing.T) {
		r := e.do(t, "POST", "/v1/printers/r1/duplicate", &e.pos, "", "Idempotency-Key", "dup-3")
		var body struct{ Error struct{ Code string } }
		json.Unmarshal(r.body, &body)
		if r.status != 409 || body.Error.Code != api.CodeNotFiscalPrinter {
			t.Fatalf("status %d %s", r.status, r.body)
		}
	})
	t.Run("ErrUnknown", func(t *testing.T) {
		if r := e.do(t, "POST", "/v1/printers/nope/duplicate", &e.pos, "", "Idempotency-Key", "dup-4"); r.status != 404 {
			t.Fatalf("status %d %s", r.status, r.body)
		}
	})
	t.Run("ErrNoIdempotencyKey", func(t *testing.T) {
		if r := e.do(t, "POST", "/v1/printers/p1/duplicate", &e.pos, ""); r.status != 400 || duplicates() != 1 {
			t.Fatalf("status %d %s", r.status, r.body)
		}
	})
}
