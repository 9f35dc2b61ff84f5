package me_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/iic"
	"github.com/posgate/posgate/fiscal/me"
)

// schemaDir is the official v5 schema with the two pattern escapes
// libxml2 rejects fixed (copied to testdata/xsd, see testdata/README.md).
const schemaDir = "testdata/xsd"

// exampleKey is the specification's public example key (RSA-2048).
func exampleKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	raw, err := os.ReadFile("../testdata/me-spec-v5-example-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	key, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// testCert is a self-signed certificate for key.
func testCert(t testing.TB, key *rsa.PrivateKey) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "posgate test taxpayer", SerialNumber: "12345678"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var issuer = me.Issuer{
	TIN: "12345678", Name: "Shop d.o.o.", Address: "Njegoseva 1", Town: "Podgorica",
	BusinessUnit: "bb123bb123", TCR: "cc123cc123", Software: "ss123ss123", Operator: "oo123oo123", InVAT: true,
}

// signedInvoice returns a fiscal.Invoice as fiscal.Invoices issues it,
// signed by the IIC scheme with key.
func signedInvoice(t testing.TB, key *rsa.PrivateKey, typ string, ord int64, issued time.Time) fiscal.Invoice {
	t.Helper()
	s, err := iic.New(iic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sign := int64(1)
	if typ != fiscal.TypeSale {
		sign = -1
	}
	inv := fiscal.Invoice{
		ID: "inv_test", Type: typ, Number: "bb123bb123/" + itoa(ord) + "/2026/cc123cc123", Ordinal: ord, Year: 2026,
		BusinessUnit: "bb123bb123", Device: "cc123cc123", Software: "ss123ss123", TIN: "12345678", Currency: "EUR",
		IssuedAt: issued,
		Items: []fiscal.Item{
			{Name: "Espresso", Quantity: "2", UnitPrice: 150, VATRate: "21", Amount: sign * 300},
			{Name: "Bread", Quantity: "1.5", UnitPrice: 200, VATRate: "7", Discount: 50, Amount: sign * 250},
		},
		Payments: []fiscal.Payment{{Type: "cash", Amount: sign * 1000}},
		Totals: fiscal.Totals{Total: sign * 550, Net: sign * (248 + 234), VAT: sign * (52 + 16), Paid: sign * 1000, Change: sign * 450,
			PerRate: []fiscal.RateTotal{{VATRate: "21", Gross: sign * 300, Net: sign * 248, VAT: sign * 52}, {VATRate: "7", Gross: sign * 250, Net: sign * 234, VAT: sign * 16}}},
	}
	if typ != fiscal.TypeSale {
		inv.Payments[0].Amount = -550
		inv.Totals.Paid, inv.Totals.Change = -550, 0
	}
	sig, err := s.Sign(context.Background(), key, fiscal.Document{TIN: inv.TIN, IssuedAt: issued, Ordinal: ord,
		BusinessUnit: inv.BusinessUnit, Device: inv.Device, Software: inv.Software, Total: fiscal.Money(inv.Totals.Total)})
	if err != nil {
		t.Fatal(err)
	}
	inv.Signature = sig
	return inv
}

func itoa(n int64) string { return big.NewInt(n).String() }

// needTool skips unless CI is the caller: .ci/run installs these, so CI
// fails instead of skipping (POSGATE_XMLTOOLS_REQUIRED=1).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("POSGATE_XMLTOOLS_REQUIRED") != "" {
			t.Fatalf("%s is required (apt-get install libxml2-utils xmlsec1)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
