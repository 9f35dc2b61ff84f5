package me_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/posgate/posgate/fiscal/me"
)

func spec(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/spec/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixEndTag repairs the spec's fault examples, which close responseUUID
// with </requestUUID>.
func fixEndTag(b []byte) []byte {
	return bytes.Replace(b, []byte("9416dcca-499a-4724-933d-40d115ea4fc7</requestUUID>"), []byte("9416dcca-499a-4724-933d-40d115ea4fc7</responseUUID>"), 1)
}

// TestFaultSpecExample reads the faults of spec 3.8.3 (11_Fault.xml)
// and 10_Fault.xml. As printed they close responseUUID with
// </requestUUID>; a strict parser refuses that, so the test fixes it.
func TestFaultSpecExample(t *testing.T) {
	if _, _, err := me.Body(spec(t, "11_Fault.xml")); err == nil {
		t.Fatal("the spec's fault as printed (mismatched end tag) was accepted")
	}
	_, el, err := me.Body(fixEndTag(spec(t, "11_Fault.xml")))
	if err != nil {
		t.Fatal(err)
	}
	f := me.ParseFault(el)
	if f == nil || f.FaultCode != "CLIENT" || f.Message != "OPIS GREŠKE." || f.Code != "KOD GREŠKE" ||
		f.RequestUUID != "78dde160-2b33-40e4-98fa-f6a2c34475a3" || f.ResponseUUID != "9416dcca-499a-4724-933d-40d115ea4fc7" {
		t.Fatalf("11_Fault: %+v", f)
	}
	_, err = me.ParseResponse(fixEndTag(spec(t, "10_Fault.xml")), "RegisterInvoiceResponse", nil)
	var fe *me.FaultError
	if !errors.As(err, &fe) || fe.Code != "30" || fe.Message != "Validation failed with digest wrong." {
		t.Fatalf("10_Fault fixed: %v", err)
	}
	if !me.Blocking(fe.Code) || me.Describe("30") == "" {
		t.Fatal("code 30 (digest) is a blocking signature error")
	}
}

// TestResponseByNamespaceNotPrefix: the spec's response (05) uses ns2
// for the service's namespace (written with spaces around it); the same
// document with other prefixes reads the same, and a right prefix on a
// wrong namespace is refused. The spec elides its signature value, so
// the signature check must fail on it.
func TestResponseByNamespaceNotPrefix(t *testing.T) {
	raw := spec(t, "05_RegisterInvoiceResponse.xml")
	for _, doc := range [][]byte{raw, bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("SOAP-ENV:"), []byte("s:")),
		[]byte("xmlns:SOAP-ENV"), []byte("xmlns:s"))} {
		_, el, err := me.Body(doc)
		if err != nil {
			t.Fatal(err)
		}
		if el.Tag != "RegisterInvoiceResponse" {
			t.Fatalf("body element %s", el.Tag)
		}
		if _, err := me.ParseResponse(doc, "RegisterInvoiceResponse", nil); !errors.Is(err, me.ErrNoSignature) {
			t.Fatalf("elided signature: %v", err)
		}
	}
	wrongNS := bytes.Replace(raw, []byte(`xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"`), []byte(`xmlns:SOAP-ENV="urn:other"`), 1)
	if _, _, err := me.Body(wrongNS); !errors.Is(err, me.ErrNotSOAP) {
		t.Fatalf("SOAP-ENV prefix on another namespace: %v", err)
	}
}

// TestCodes checks the split of ch. 3.8.2 codes the retry policy uses.
func TestCodes(t *testing.T) {
	for _, c := range []struct {
		code             string
		server, blocking bool
	}{
		{"58", false, false}, {"11", false, true}, {"44", false, true}, {"29", false, true}, {"36", false, false},
		{"900", true, false}, {"999", true, false}, {"9xx", false, false}, {"", false, false},
	} {
		if me.ServerCode(c.code) != c.server || me.Blocking(c.code) != c.blocking {
			t.Errorf("%q: server %v blocking %v", c.code, me.ServerCode(c.code), me.Blocking(c.code))
		}
	}
}

// FuzzParseResponse: any answer parses without panic, and nothing but a
// correctly signed response yields a code.
func FuzzParseResponse(f *testing.F) {
	for _, n := range []string{"05_RegisterInvoiceResponse.xml", "01_RegisterTCRResponse.xml",
		"03_RegisterCashDepositResponse.xml", "10_Fault.xml", "11_Fault.xml"} {
		f.Add(fixEndTag(spec(f, n)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := me.ParseResponse(b, "RegisterInvoiceResponse", nil)
		if err == nil && (r.Code == "" || r.Certificate == nil) {
			t.Fatalf("accepted without code or signer: %+v", r)
		}
	})
}
