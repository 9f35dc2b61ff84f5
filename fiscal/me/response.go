package me

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Errors of reading an answer.
var (
	ErrNotSOAP     = errors.New("me: the answer is not a SOAP envelope")
	ErrNoSignature = errors.New("me: the answer carries no valid signature")
)

// Response is a successful answer: the code the service gave (FIC,
// TCRCode or FCDC) and its header.
type Response struct {
	Name         string // RegisterInvoiceResponse, …
	Code         string // FIC, TCRCode or FCDC
	UUID         string
	RequestUUID  string
	SendDateTime string
	// Certificate signed the answer (from its KeyInfo).
	Certificate *x509.Certificate
}

// FaultError is a SOAP fault of the service (spec 3.8): faultcode CLIENT
// or SERVER, the explanation and the numeric code of ch. 3.8.2.
type FaultError struct {
	FaultCode    string // local part: CLIENT or SERVER
	Message      string
	Code         string // numeric, e.g. "58"; "" if the fault had none
	RequestUUID  string
	ResponseUUID string
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("fiscal service fault %s (%s): %s", e.Code, e.FaultCode, e.Message)
}

// sameNS compares namespace names. The spec's own response examples
// write the service's namespace with spaces around it (" https://… "),
// so those are ignored; nothing else is.
func sameNS(got, want string) bool { return strings.TrimSpace(got) == want }

// child returns el's first child element in namespace ns (any if ns is
// "-") with the local name. Prefixes are never compared.
func child(el *etree.Element, ns, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == local && (ns == "-" || sameNS(c.NamespaceURI(), ns)) {
			return c
		}
	}
	return nil
}

// Body parses a SOAP 1.1 envelope and returns the document and the
// first element of its Body.
func Body(b []byte) (*etree.Document, *etree.Element, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotSOAP, err)
	}
	env := doc.Root()
	if env == nil || env.Tag != "Envelope" || !sameNS(env.NamespaceURI(), SOAPNamespace) {
		return nil, nil, ErrNotSOAP
	}
	body := child(env, SOAPNamespace, "Body")
	if body == nil || len(body.ChildElements()) == 0 {
		return nil, nil, fmt.Errorf("%w: no Body content", ErrNotSOAP)
	}
	return doc, body.ChildElements()[0], nil
}

// ParseFault returns the fault in el, or nil if el is no SOAP fault.
func ParseFault(el *etree.Element) *FaultError {
	if el.Tag != "Fault" || !sameNS(el.NamespaceURI(), SOAPNamespace) {
		return nil
	}
	f := &FaultError{}
	// SOAP 1.1 fault children are unqualified; some servers qualify them.
	if c := child(el, "-", "faultcode"); c != nil {
		code := strings.TrimSpace(c.Text())
		if i := strings.LastIndexByte(code, ':'); i >= 0 {
			code = code[i+1:]
		}
		f.FaultCode = strings.ToUpper(code)
	}
	if c := child(el, "-", "faultstring"); c != nil {
		f.Message = strings.TrimSpace(c.Text())
	}
	if d := child(el, "-", "detail"); d != nil {
		if c := child(d, "-", "code"); c != nil {
			f.Code = strings.TrimSpace(c.Text())
		}
		if c := child(d, "-", "requestUUID"); c != nil {
			f.RequestUUID = strings.TrimSpace(c.Text())
		}
		if c := child(d, "-", "responseUUID"); c != nil {
			f.ResponseUUID = strings.TrimSpace(c.Text())
		}
	}
	return f
}

// codeElement names the element that carries each answer's code.
var codeElement = map[string]string{
	"RegisterInvoiceResponse":     "FIC",
	"RegisterTCRResponse":         "TCRCode",
	"RegisterCashDepositResponse": "FCDC",
}

// ParseResponse reads an answer: a *FaultError for a fault, else the
// response named want with its code. The answer's signature is checked
// against the certificate in its KeyInfo, which must be one of trusted
// if trusted is not empty.
func ParseResponse(b []byte, want string, trusted []*x509.Certificate) (Response, error) {
	_, el, err := Body(b)
	if err != nil {
		return Response{}, err
	}
	if f := ParseFault(el); f != nil {
		return Response{}, f
	}
	if el.Tag != want || !sameNS(el.NamespaceURI(), Namespace) {
		return Response{}, fmt.Errorf("%w: got %s in %q, want %s", ErrNotSOAP, el.Tag, el.NamespaceURI(), want)
	}
	cert, err := VerifyElement(el, trusted)
	if err != nil {
		return Response{}, err
	}
	r := Response{Name: want, Certificate: cert}
	if h := child(el, Namespace, "Header"); h != nil {
		r.UUID = h.SelectAttrValue("UUID", "")
		r.RequestUUID = h.SelectAttrValue("RequestUUID", "")
		r.SendDateTime = h.SelectAttrValue("SendDateTime", "")
	}
	c := child(el, Namespace, codeElement[want])
	if c == nil || strings.TrimSpace(c.Text()) == "" {
		return Response{}, fmt.Errorf("%w: %s has no %s", ErrNotSOAP, want, codeElement[want])
	}
	r.Code = strings.TrimSpace(c.Text())
	return r, nil
}

// VerifyElement checks el's enveloped signature (reference "#" + its Id)
// with the certificate of its KeyInfo and returns that certificate. If
// trusted is not empty, the certificate must be one of them.
func VerifyElement(el *etree.Element, trusted []*x509.Certificate) (*x509.Certificate, error) {
	sig := child(el, DSigNamespace, "Signature")
	if sig == nil {
		return nil, ErrNoSignature
	}
	xc := sig.FindElement(".//X509Certificate")
	if xc == nil {
		return nil, fmt.Errorf("%w: no certificate in KeyInfo", ErrNoSignature)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(xc.Text()), ""))
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrNoSignature, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %v", ErrNoSignature, err)
	}
	if len(trusted) > 0 {
		ok := false
		for _, t := range trusted {
			ok = ok || t.Equal(cert)
		}
		if !ok {
			return nil, fmt.Errorf("%w: signed by %s, which is not trusted", ErrNoSignature, cert.Subject)
		}
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	vc.IdAttribute = "Id"
	// Validity is the caller's business (a test service's certificate may
	// be short-lived); only the signature is checked here.
	vc.Clock = dsig.NewFakeClockAt(cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) / 2))
	if _, err := vc.Validate(el); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoSignature, err)
	}
	return cert, nil
}
