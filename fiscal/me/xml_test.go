package me_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/me"
)

func buildRequest(t *testing.T, typ string, subseq string) []byte {
	t.Helper()
	key := exampleKey(t)
	cert := testCert(t, key)
	issued := time.Date(2026, 3, 2, 9, 15, 7, 0, time.UTC)
	inv := signedInvoice(t, key, fiscal.TypeSale, 7, issued)
	var orig *fiscal.Invoice
	if typ != fiscal.TypeSale {
		o := inv
		orig = &o
		inv = signedInvoice(t, key, typ, 8, issued.Add(time.Hour))
	}
	msg, err := me.BuildInvoice(inv, orig, issuer)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Europe/Podgorica")
	h := me.NewHeader(issued.Add(2*time.Hour), loc, subseq)
	b, err := me.SignedEnvelope(me.InvoiceElement(h, msg), key, cert)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRequestValidatesAgainstOfficialXSD runs xmllint with the official
// v5 schema (spec 3.7.1) on a sale, a refund (CorrectiveInv) and a
// re-sent sale (SubseqDelivType): the body element of each envelope.
func TestRequestValidatesAgainstOfficialXSD(t *testing.T) {
	xmllint := needTool(t, "xmllint")
	for _, c := range []struct{ name, typ, subseq string }{
		{"Sale", fiscal.TypeSale, ""},
		{"Refund", fiscal.TypeRefund, ""},
		{"Void", fiscal.TypeVoid, ""},
		{"Resent", fiscal.TypeSale, me.SubseqNoInternet},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := buildRequest(t, c.typ, c.subseq)
			_, body, err := me.Body(env)
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			doc.SetRoot(body.Copy())
			b, _ := doc.WriteToBytes()
			p := writeTemp(t, "req.xml", b)
			out, err := exec.Command(xmllint, "--noout", "--schema", schemaDir+"/FiscalService_v5_official.xsd", p).CombinedOutput()
			if err != nil {
				t.Fatalf("xmllint: %v\n%s", err, out)
			}
			if c.subseq != "" && !bytes.Contains(b, []byte(`SubseqDelivType="NOINTERNET"`)) {
				t.Fatalf("no SubseqDelivType in %s", b)
			}
			if c.typ != fiscal.TypeSale && !bytes.Contains(b, []byte(`<CorrectiveInv IICRef=`)) {
				t.Fatalf("no CorrectiveInv in %s", b)
			}
		})
	}
}

// TestSignatureVerifiesWithXmlsec1 checks the enveloped signature (spec
// 4.3.1) with xmlsec1, which shares no code with goxmldsig: the Id
// attribute declared as the ID, the certificate from KeyInfo.
func TestSignatureVerifiesWithXmlsec1(t *testing.T) {
	xmlsec := needTool(t, "xmlsec1")
	env := buildRequest(t, fiscal.TypeSale, "")
	args := func(p string) []string {
		return []string{"--verify", "--id-attr:Id", "RegisterInvoiceRequest", "--insecure", "--enabled-key-data", "x509", p}
	}
	if out, err := exec.Command(xmlsec, args(writeTemp(t, "env.xml", env))...).CombinedOutput(); err != nil {
		t.Fatalf("xmlsec1: %v\n%s", err, out)
	}
	// One changed byte in the signed content must fail.
	bad := bytes.Replace(env, []byte(`TotPrice="5.50"`), []byte(`TotPrice="5.51"`), 1)
	if bytes.Equal(bad, env) {
		t.Fatal("TotPrice not found")
	}
	if out, err := exec.Command(xmlsec, args(writeTemp(t, "bad.xml", bad))...).CombinedOutput(); err == nil {
		t.Fatalf("xmlsec1 verified a changed document:\n%s", out)
	}
	for _, want := range []string{
		`<Reference URI="#Request">`,
		`Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"`,
		`Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"`,
		`Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"`,
		`Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"`,
		`<X509Certificate>`,
	} {
		if !strings.Contains(string(env), want) {
			t.Errorf("envelope lacks %s", want)
		}
	}
}

// TestTCRAndCashDepositRequests: RegisterTCRRequest (spec 3.5.1) and
// RegisterCashDepositRequest (spec 3.6.1) pass the official XSD and
// their signatures verify with xmlsec1.
func TestTCRAndCashDepositRequests(t *testing.T) {
	xmllint, xmlsec := needTool(t, "xmllint"), needTool(t, "xmlsec1")
	key := exampleKey(t)
	cert := testCert(t, key)
	loc, _ := time.LoadLocation("Europe/Podgorica")
	now := time.Date(2026, 3, 2, 9, 15, 7, 0, time.UTC)
	for _, c := range []struct {
		name string
		el   *etree.Element
	}{
		{"RegisterTCRRequest", me.TCRElement(me.NewHeader(now, loc, ""), me.TCR{IssuerTIN: "12345678", BusinUnitCode: "bb123bb123",
			TCRIntID: "till-1", SoftCode: "ss123ss123", MaintainerCode: "mm123mm123", ValidFrom: "2026-03-03", Type: "REGULAR"})},
		{"RegisterCashDepositRequest", me.CashDepositElement(me.NewHeader(now, loc, ""), me.CashDeposit{
			ChangeDateTime: me.FormatTime(now, loc), Operation: "INITIAL", CashAmt: 10000, TCRCode: "cc123cc123", IssuerTIN: "12345678"})},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, err := me.SignedEnvelope(c.el, key, cert)
			if err != nil {
				t.Fatal(err)
			}
			_, body, err := me.Body(env)
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			doc.SetRoot(body.Copy())
			b, _ := doc.WriteToBytes()
			if out, err := exec.Command(xmllint, "--noout", "--schema", schemaDir+"/FiscalService_v5_official.xsd", writeTemp(t, "r.xml", b)).CombinedOutput(); err != nil {
				t.Fatalf("xmllint: %v\n%s", err, out)
			}
			if out, err := exec.Command(xmlsec, "--verify", "--id-attr:Id", c.name, "--insecure", "--enabled-key-data", "x509",
				writeTemp(t, "env.xml", env)).CombinedOutput(); err != nil {
				t.Fatalf("xmlsec1: %v\n%s", err, out)
			}
		})
	}
}
