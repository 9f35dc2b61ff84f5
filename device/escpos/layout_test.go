package escpos_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/escpos"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func slipText(s device.Slip) string {
	var b strings.Builder
	for _, l := range append(s.Lines, s.Trailer...) {
		fmt.Fprintf(&b, "%d%s%s|%s\n", l.Align, map[bool]string{true: "B"}[l.Bold], map[bool]string{true: "D"}[l.Double], l.Text)
	}
	fmt.Fprintf(&b, "QR|%s\n", s.QR)
	return b.String()
}

// The layout of a fiscal receipt on a receipt printer: items with
// quantity × price and amount, discounts, the total, payments, change,
// the footer and the QR payload. testdata/*.golden; -update rewrites.
func TestReceiptSlipGolden(t *testing.T) {
	sale := device.Receipt{
		ID: "inv-1",
		Lines: []device.Line{
			{Item: device.Item{Name: "Čevapi sa lukom", VATGroup: 1, UnitPrice: 550, Quantity: 2000}},
			{Item: device.Item{Name: "Kafa", VATGroup: 1, UnitPrice: 150, Quantity: 1500,
				Discount: device.Modifier{Kind: device.DiscountPercent, Value: 1000}}},
			{Comment: "Hvala!"},
		},
		Discount: device.Modifier{Kind: device.DiscountAmount, Value: 25},
		Payments: []device.Payment{{Mode: device.PayCard, Amount: 1000}, {Mode: device.PayCash, Amount: 500}},
		Footer:   []string{"No 7/2026", "IIC 6F2C0A1B"},
		QR:       "https://efitest.tax.gov.me/ic/#/verify?iic=6F2C0A1B",
	}
	storno := sale
	storno.ID, storno.Payments = "inv-2", nil
	storno.Storno = &device.StornoHeader{Reason: device.StornoRefund, OriginalTime: time.Date(2026, 12, 6, 14, 5, 0, 0, time.UTC)}
	for name, tc := range map[string]struct {
		doc   device.Receipt
		total int64
	}{
		"sale":   {sale, 1100 + 225 - 23 - 25}, // 10 % of 2.25 is 0.225, rounded half away from zero,
		"storno": {storno, 1100 + 225 - 23 - 25},
	} {
		t.Run(name, func(t *testing.T) {
			s, total := escpos.ReceiptSlip(tc.doc, 42)
			if total != tc.total {
				t.Errorf("total = %d, want %d", total, tc.total)
			}
			got := slipText(s)
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("layout\n%s\nwant\n%s", got, want)
			}
		})
	}
}
