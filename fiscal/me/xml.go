package me

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"strconv"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/posgate/posgate/fiscal"
)

// Namespaces (spec 3.2; the WSDL's targetNamespace).
const (
	Namespace     = "https://efi.tax.gov.me/fs/schema"
	SOAPNamespace = "http://schemas.xmlsoap.org/soap/envelope/"
	DSigNamespace = "http://www.w3.org/2000/09/xmldsig#"
)

// SubseqDelivType values (spec 3.7.1, "Tip naknadne dostave").
const (
	SubseqNoInternet     = "NOINTERNET"
	SubseqService        = "SERVICE"
	SubseqTechnicalError = "TECHNICALERROR"
)

// Header is a request's Header element.
type Header struct {
	UUID            string
	SendDateTime    string
	SubseqDelivType string // "" on a first, timely delivery
}

// NewHeader returns a header with a fresh UUID, sent at now in loc.
func NewHeader(now time.Time, loc *time.Location, subseq string) Header {
	return Header{UUID: NewUUID(), SendDateTime: FormatTime(now, loc), SubseqDelivType: subseq}
}

// FormatTime writes t as the service's UTCSType: seconds and the local
// offset, e.g. 2019-12-05T14:30:13+01:00.
func FormatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("2006-01-02T15:04:05-07:00")
}

// NewUUID returns a random (version 4) UUID, which the schema's
// UUIDSType pattern accepts.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("me: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func money(v int64) string { return fiscal.Money(v).String() }

// newRequest starts a request element (RegisterInvoiceRequest, …) in the
// service's namespace as the default, with Id="Request" and Version="1"
// as the schema fixes them, and its Header.
func newRequest(name string, h Header) *etree.Element {
	el := etree.NewElement(name)
	el.CreateAttr("xmlns", Namespace)
	el.CreateAttr("Id", "Request")
	el.CreateAttr("Version", "1")
	hd := el.CreateElement("Header")
	hd.CreateAttr("SendDateTime", h.SendDateTime)
	if h.SubseqDelivType != "" {
		hd.CreateAttr("SubseqDelivType", h.SubseqDelivType)
	}
	hd.CreateAttr("UUID", h.UUID)
	return el
}

// InvoiceElement returns the unsigned RegisterInvoiceRequest for inv.
func InvoiceElement(h Header, inv Invoice) *etree.Element {
	req := newRequest("RegisterInvoiceRequest", h)
	e := req.CreateElement("Invoice")
	attr := func(k, v string) { e.CreateAttr(k, v) }
	attr("BusinUnitCode", inv.BusinUnitCode)
	attr("IIC", inv.IIC)
	attr("IICSignature", inv.IICSignature)
	attr("InvNum", inv.InvNum)
	attr("InvOrdNum", strconv.FormatInt(inv.InvOrdNum, 10))
	attr("InvType", inv.InvType)
	attr("IsIssuerInVAT", strconv.FormatBool(inv.IsIssuerInVAT))
	attr("IsReverseCharge", "false")
	attr("IssueDateTime", inv.IssueDateTime)
	attr("OperatorCode", inv.OperatorCode)
	attr("SoftCode", inv.SoftCode)
	attr("TCRCode", inv.TCRCode)
	attr("TotPrice", money(inv.TotPrice))
	attr("TotPriceWoVAT", money(inv.TotPriceWoVAT))
	if inv.IsIssuerInVAT {
		attr("TotVATAmt", money(inv.TotVATAmt))
	}
	attr("TypeOfInv", inv.TypeOfInv)
	if c := inv.Corrective; c != nil {
		ce := e.CreateElement("CorrectiveInv")
		ce.CreateAttr("IICRef", c.IICRef)
		ce.CreateAttr("IssueDateTime", c.IssueDateTime)
		ce.CreateAttr("Type", c.Type)
	}
	pms := e.CreateElement("PayMethods")
	for _, p := range inv.PayMethods {
		pm := pms.CreateElement("PayMethod")
		pm.CreateAttr("Amt", money(p.Amt))
		pm.CreateAttr("Type", p.Type)
	}
	s := e.CreateElement("Seller")
	s.CreateAttr("IDType", inv.Seller.IDType)
	s.CreateAttr("IDNum", inv.Seller.IDNum)
	s.CreateAttr("Name", inv.Seller.Name)
	if inv.Seller.Address != "" {
		s.CreateAttr("Address", inv.Seller.Address)
	}
	if inv.Seller.Town != "" {
		s.CreateAttr("Town", inv.Seller.Town)
	}
	s.CreateAttr("Country", inv.Seller.Country)
	if len(inv.Items) > 0 {
		items := e.CreateElement("Items")
		for _, it := range inv.Items {
			i := items.CreateElement("I")
			i.CreateAttr("N", it.N)
			i.CreateAttr("PA", money(it.PA))
			i.CreateAttr("PB", money(it.PB))
			i.CreateAttr("Q", it.Q)
			if it.R != "" {
				i.CreateAttr("R", it.R)
				i.CreateAttr("RR", strconv.FormatBool(it.RR))
			}
			i.CreateAttr("U", it.U)
			i.CreateAttr("UPA", money(it.UPA))
			i.CreateAttr("UPB", money(it.UPB))
			if it.VR != "" {
				i.CreateAttr("VA", money(it.VA))
				i.CreateAttr("VR", it.VR)
			}
		}
	}
	if len(inv.SameTaxes) > 0 {
		st := e.CreateElement("SameTaxes")
		for _, t := range inv.SameTaxes {
			x := st.CreateElement("SameTax")
			x.CreateAttr("NumOfItems", strconv.Itoa(t.NumOfItems))
			x.CreateAttr("PriceBefVAT", money(t.PriceBefVAT))
			x.CreateAttr("VATAmt", money(t.VATAmt))
			x.CreateAttr("VATRate", t.VATRate)
		}
	}
	return req
}

// TCR is a RegisterTCRRequest's TCR element (spec 3.5.1).
type TCR struct {
	IssuerTIN      string
	BusinUnitCode  string
	TCRIntID       string // the shop's own id of the device
	SoftCode       string
	MaintainerCode string
	ValidFrom      string // YYYY-MM-DD, optional
	Type           string // REGULAR or VENDING
}

// TCRElement returns the unsigned RegisterTCRRequest.
func TCRElement(h Header, t TCR) *etree.Element {
	h.SubseqDelivType = "" // not in RegisterTCRRequestHeaderType
	req := newRequest("RegisterTCRRequest", h)
	e := req.CreateElement("TCR")
	e.CreateAttr("BusinUnitCode", t.BusinUnitCode)
	e.CreateAttr("IssuerTIN", t.IssuerTIN)
	if t.MaintainerCode != "" {
		e.CreateAttr("MaintainerCode", t.MaintainerCode)
	}
	if t.SoftCode != "" {
		e.CreateAttr("SoftCode", t.SoftCode)
	}
	e.CreateAttr("TCRIntID", t.TCRIntID)
	if t.Type != "" {
		e.CreateAttr("Type", t.Type)
	}
	if t.ValidFrom != "" {
		e.CreateAttr("ValidFrom", t.ValidFrom)
	}
	return req
}

// CashDeposit is a RegisterCashDepositRequest's CashDeposit (spec 3.6.1).
type CashDeposit struct {
	ChangeDateTime string
	Operation      string // INITIAL or WITHDRAW
	CashAmt        int64  // minor units, ≥ 0
	TCRCode        string
	IssuerTIN      string
}

// CashDepositElement returns the unsigned RegisterCashDepositRequest.
func CashDepositElement(h Header, d CashDeposit) *etree.Element {
	req := newRequest("RegisterCashDepositRequest", h)
	e := req.CreateElement("CashDeposit")
	e.CreateAttr("CashAmt", money(d.CashAmt))
	e.CreateAttr("ChangeDateTime", d.ChangeDateTime)
	e.CreateAttr("IssuerTIN", d.IssuerTIN)
	e.CreateAttr("Operation", d.Operation)
	e.CreateAttr("TCRCode", d.TCRCode)
	return req
}

// Sign signs a request or response element with an enveloped XML
// signature as spec 4.3.1 prescribes: exclusive C14N, RSA-SHA256,
// SHA-256 digest, reference "#"+Id, the certificate in KeyInfo, the
// Signature element in the xmldsig namespace as the default (as in the
// spec's examples). cert must be key's certificate: a request signed by
// one key and carrying another's certificate fails at the service with
// code 29, so it is refused here.
func Sign(el *etree.Element, key crypto.Signer, cert *x509.Certificate) (*etree.Element, error) {
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("sign %s: the key is not RSA", el.Tag)
	}
	if pk, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pk.Equal(key.Public()) {
		return nil, fmt.Errorf("sign %s: the certificate is not the key's", el.Tag)
	}
	ctx, err := dsig.NewSigningContext(key, [][]byte{cert.Raw})
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", el.Tag, err)
	}
	ctx.Prefix = ""
	ctx.IdAttribute = "Id"
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return nil, fmt.Errorf("sign %s: %w", el.Tag, err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", el.Tag, err)
	}
	return signed, nil
}

// Envelope wraps a signed element in a SOAP 1.1 envelope with an empty
// header (spec 3.3) and returns the document's bytes, UTF-8 with the XML
// declaration (spec 3.2).
func Envelope(body *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("SOAP-ENV:Envelope")
	env.CreateAttr("xmlns:SOAP-ENV", SOAPNamespace)
	env.CreateElement("SOAP-ENV:Header")
	b := env.CreateElement("SOAP-ENV:Body")
	b.AddChild(body)
	out, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("write envelope: %w", err)
	}
	return out, nil
}

// SignedEnvelope signs el and wraps it: the bytes to POST.
func SignedEnvelope(el *etree.Element, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	signed, err := Sign(el, key, cert)
	if err != nil {
		return nil, err
	}
	return Envelope(signed)
}
