package me_test

import (
	"context"
	"strings"
	"testing"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/iic"
	"github.com/posgate/posgate/fiscal/me"
)

type capture struct{ r device.Receipt }

func (c *capture) PrintReceipt(_ context.Context, r device.Receipt) (device.ReceiptResult, error) {
	c.r = r
	return device.ReceiptResult{ID: r.ID}, nil
}

// The me receipt: number, IIC, FIC when known, the verification URL cut
// to the line width, and the URL as the QR payload; printing completes
// nothing (the FIC does); a certificate is required.
func TestCountryReceipt(t *testing.T) {
	sch, err := iic.New(iic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := me.NewCountry(me.CountryOptions{Name: "me", Scheme: sch, Width: 32})
	if r := c.Requirements(); !r.Certificate || !r.Registration || c.Scheme() == nil {
		t.Fatalf("requirements %+v", r)
	}
	url := "https://efitest.tax.gov.me/ic/#/verify?iic=ABCDEF0123456789ABCDEF0123456789&tin=12345678"
	inv := fiscal.Invoice{ID: "inv_1", Number: "bb123bb123/1/2026/cc123cc123",
		Signature:     fiscal.Signature{Code: "ABCDEF0123456789ABCDEF0123456789", VerifyURL: url},
		Fiscalization: &fiscal.FiscalizationStatus{Status: fiscal.RegCompleted, FIC: "4b2d1c7e-0000-4000-8000-000000000001"}}
	var p capture
	if _, err := c.Print(context.Background(), &p, inv, device.Receipt{ID: inv.ID}); err != nil {
		t.Fatal(err)
	}
	f := p.r.Footer
	if len(f) < 4 || f[0] != "No "+inv.Number || f[1] != "IIC "+inv.Signature.Code || f[2] != "FIC "+inv.Fiscalization.FIC {
		t.Fatalf("footer %q", f)
	}
	if strings.Join(f[3:], "") != url || len(f[3]) != 32 || p.r.QR != url {
		t.Errorf("URL lines %q QR %q", f[3:], p.r.QR)
	}
	inv.Fiscalization = nil
	c.Print(context.Background(), &p, inv, device.Receipt{ID: inv.ID})
	if strings.Contains(strings.Join(p.r.Footer, "\n"), "FIC") {
		t.Errorf("FIC printed without one: %q", p.r.Footer)
	}
	if d, err := c.Completed(context.Background(), &p, inv, device.ReceiptResult{}, ""); d != nil || err != nil {
		t.Errorf("completed on print: %v %v", d, err)
	}
	if al := me.NewCountry(me.CountryOptions{Name: "al", Scheme: sch}); al.Requirements().Registration {
		t.Error("al registers with a service posgate does not implement")
	}
}
