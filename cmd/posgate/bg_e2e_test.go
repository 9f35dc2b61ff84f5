//go:build linux || darwin

package main

import (
	"fmt"
	"strings"
	"testing"
)

// Profile bg end to end over a pty: serve --simulate with country "bg"
// runs the Datecs simulator; an invoice from a key bound to no
// certificate takes a UNP, the fiscal receipt is opened with it, and
// fiscalization.completed carries the UNP, receipt number, fiscal memory
// and the QR data read back from the printer (4Ah).
func TestProfileBGEndToEnd(t *testing.T) {
	cfg := writeConfig(t, "[fiscal]\ncountry = \"bg\"\ntin = \"204567890\"\nbusiness_unit = \"shop1\"\ntcr = \"pos1\"\nsoftware = \"posgate\"\ncurrency = \"BGN\"\noperator = \"0001\"\n"+
		"\n[[printers]]\nid = \"p1\"\nprotocol = \"datecs-x\"\nport = \"/dev/ttyUSB0\"\n") // --simulate replaces p1
	pos, admin := cliKey(t, cfg, "pos"), cliKey(t, cfg, "admin")
	d := startDaemon(t, cfg, "--simulate")
	var inv struct {
		ID, Number string
		SaleNumber string                 `json:"sale_number"`
		Print      struct{ State string } `json:"print"`
	}
	body := `{"type":"sale","items":[{"name":"Banitsa","quantity":2,"unit_price":250,"vat_rate":20}],"payments":[{"type":"cash","amount":500}]}`
	waitFor(t, "invoice (the printer connects)", func() bool {
		return call(t, "POST", d.url+"/v1/invoices", pos, body, &inv) == 201
	})
	if inv.SaleNumber != "DT000600-0001-0000001" {
		t.Fatalf("UNP %q", inv.SaleNumber)
	}
	waitFor(t, "print", func() bool {
		call(t, "GET", d.url+"/v1/invoices/"+inv.ID, pos, "", &inv)
		return inv.Print.State == "printed"
	})
	var ev map[string]any
	waitFor(t, "fiscalization.completed", func() bool {
		call(t, "GET", d.url+"/v1/events?type=fiscalization.completed", admin, "", &ev)
		return strings.Contains(fmt.Sprint(ev), inv.SaleNumber)
	})
	s := fmt.Sprint(ev)
	if !strings.Contains(s, "qr_data:") || strings.Contains(s, "qr_data: ") || !strings.Contains(s, "unp:"+inv.SaleNumber) {
		t.Errorf("fiscalization.completed: %s", s)
	}
	t.Logf("event: %s", s)
}
