package taxservice

import (
	"crypto"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

func (s *Server) invoice(req, hdr *etree.Element, cert *x509.Certificate, rec *Request, reqUUID string) ([]byte, string, string, string) {
	inv := find(req, nsFS, "Invoice")
	seller := find(inv, nsFS, "Seller")
	if inv == nil || seller == nil {
		return nil, "11", "Invoice or Seller is missing", reqUUID
	}
	a := func(k string) string { return inv.SelectAttrValue(k, "") }
	rec.IIC, rec.InvOrdNum = a("IIC"), a("InvOrdNum")
	// IIC (spec 4.3.2): the RSA-SHA256 signature of the concatenated
	// fields verifies with the certificate, and its MD5 is the IIC.
	signed := strings.Join([]string{seller.SelectAttrValue("IDNum", ""), a("IssueDateTime"), a("InvOrdNum"),
		a("BusinUnitCode"), a("TCRCode"), a("SoftCode"), a("TotPrice")}, "|")
	sig, err := hex.DecodeString(a("IICSignature"))
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	digest := sha256.Sum256([]byte(signed))
	if err != nil || !ok || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
		return nil, "11", "IICSignature does not verify for " + signed, reqUUID
	}
	sum := md5.Sum(sig)
	if !strings.EqualFold(hex.EncodeToString(sum[:]), a("IIC")) {
		return nil, "11", "IIC is not the MD5 of IICSignature", reqUUID
	}
	issued, err1 := time.Parse(time.RFC3339, a("IssueDateTime"))
	sent, err2 := time.Parse(time.RFC3339, hdr.SelectAttrValue("SendDateTime", ""))
	if err1 != nil || err2 != nil {
		return nil, "11", "IssueDateTime or SendDateTime is not a date-time", reqUUID
	}
	if d := sent.Sub(issued); (d > s.opts.SubseqTolerance || d < -s.opts.SubseqTolerance) && rec.SubseqDelivType == "" {
		return nil, "11", "IssueDateTime differs from SendDateTime and SubseqDelivType is missing", reqUUID
	}
	if s.opts.Now().Sub(sent).Abs() > 6*time.Hour {
		return nil, "2", "the client's clock differs from the server's by more than 6 hours", reqUUID
	}
	if s.opts.RequireInitialDeposit && a("TypeOfInv") == "CASH" {
		s.mu.Lock()
		ok := s.deposits[a("TCRCode")+"|"+dayOf(a("IssueDateTime"))]
		s.mu.Unlock()
		if !ok {
			return nil, "58", "no INITIAL cash deposit is registered for the day", reqUUID
		}
	}
	iic := strings.ToUpper(a("IIC"))
	s.mu.Lock()
	fic, seen := s.fics[iic]
	if !seen {
		fic = newUUID()
		s.fics[iic] = fic
	}
	s.mu.Unlock()
	rec.Answer = fic
	return s.answer("RegisterInvoiceResponse", "FIC", fic, reqUUID), "", "", reqUUID
}

// peek records what a test wants to see of a request that a fault
// switch answers: its kind, SubseqDelivType and IIC.
func peek(body []byte, rec *Request) {
	doc := etree.NewDocument()
	if doc.ReadFromBytes(body) != nil || doc.Root() == nil {
		return
	}
	body0 := find(doc.Root(), nsSOAP, "Body")
	if body0 == nil || len(body0.ChildElements()) == 0 {
		return
	}
	req := body0.ChildElements()[0]
	rec.Kind = req.Tag
	if h := find(req, nsFS, "Header"); h != nil {
		rec.SubseqDelivType = h.SelectAttrValue("SubseqDelivType", "")
	}
	if inv := find(req, nsFS, "Invoice"); inv != nil {
		rec.IIC, rec.InvOrdNum = inv.SelectAttrValue("IIC", ""), inv.SelectAttrValue("InvOrdNum", "")
	}
}

// dayOf is the date part of a UTCSType value, in its own offset.
func dayOf(v string) string {
	if len(v) >= 10 {
		return v[:10]
	}
	return v
}

func find(el *etree.Element, ns, local string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, c := range el.ChildElements() {
		if c.Tag == local && c.NamespaceURI() == ns {
			return c
		}
	}
	return nil
}

// verify checks the request's enveloped signature with the certificate
// in its KeyInfo (spec 4.3.1) and returns the certificate or a fault.
func verify(req *etree.Element) (*x509.Certificate, string, string) {
	var sigs []*etree.Element
	for _, c := range req.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == nsDSig {
			sigs = append(sigs, c)
		}
	}
	switch len(sigs) {
	case 0:
		return nil, "21", "the Signature element is missing"
	case 1:
	default:
		return nil, "24", "more than one Signature element"
	}
	if req.SelectAttrValue("Id", "") != "Request" {
		return nil, "25", "the signed element's Id is not Request"
	}
	for _, m := range []struct{ path, want, code string }{
		{"SignedInfo/CanonicalizationMethod", "http://www.w3.org/2001/10/xml-exc-c14n#", "27"},
		{"SignedInfo/SignatureMethod", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "26"},
		{"SignedInfo/Reference/DigestMethod", "http://www.w3.org/2001/04/xmlenc#sha256", "28"},
	} {
		e := sigs[0].FindElement(m.path)
		if e == nil || e.SelectAttrValue("Algorithm", "") != m.want {
			return nil, m.code, m.path + " is not " + m.want
		}
	}
	if ref := sigs[0].FindElement("SignedInfo/Reference"); ref == nil || ref.SelectAttrValue("URI", "") != "#Request" {
		return nil, "25", "the Reference is not #Request"
	}
	xc := sigs[0].FindElement("KeyInfo/X509Data/X509Certificate")
	if xc == nil {
		return nil, "33", "no X509Certificate in KeyInfo"
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(xc.Text()), ""))
	if err != nil {
		return nil, "33", "the certificate is not base64"
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "33", "the certificate is not X.509"
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
	vc.IdAttribute = "Id"
	vc.Clock = dsig.NewFakeClockAt(cert.NotBefore.Add(time.Second))
	if _, err := vc.Validate(req); err != nil {
		if errors.Is(err, dsig.ErrMissingSignature) {
			return nil, "21", err.Error()
		}
		return nil, "31", "the signature does not verify: " + err.Error()
	}
	return cert, "", ""
}
