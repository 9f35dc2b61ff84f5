package me

import (
	"fmt"
	"math/bits"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/posgate/posgate/fiscal"
)

// Issuer is the taxpayer and its registered codes, from configuration.
// Every code is the service's registration code pattern
// ([a-z]{2}[0-9]{3}[a-z]{2}[0-9]{3}); the TIN is 8 or 13 digits.
type Issuer struct {
	TIN          string
	Name         string
	Address      string
	Town         string
	Country      string // ISO 3166 alpha-3; default "MNE"
	BusinessUnit string // BusinUnitCode
	TCR          string // TCRCode
	Software     string // SoftCode
	Operator     string // OperatorCode
	Maintainer   string // MaintainerCode (RegisterTCR only; optional)
	InVAT        bool   // IsIssuerInVAT
}

var (
	codePattern = regexp.MustCompile(`^[a-z]{2}[0-9]{3}[a-z]{2}[0-9]{3}$`)
	tinPattern  = regexp.MustCompile(`^([0-9]{13}|[0-9]{8})$`)
	invNum      = regexp.MustCompile(`^[a-z]{2}[0-9]{3}[a-z]{2}[0-9]{3}/[1-9][0-9]{0,14}/[0-9]{4}/[a-z]{2}[0-9]{3}[a-z]{2}[0-9]{3}$`)
	quantityPat = regexp.MustCompile(`^-?([1-9][0-9]*|0)(\.[0-9]{1,3})?$`)
)

// Check validates the issuer's fields as the service's schema types them;
// the error names the configuration key's last part.
func (is Issuer) Check() error {
	for _, f := range []struct{ name, v string }{
		{"business_unit", is.BusinessUnit}, {"tcr", is.TCR}, {"software", is.Software}, {"operator", is.Operator},
	} {
		if !codePattern.MatchString(f.v) {
			return &fiscal.ValidationError{Field: f.name, Message: fmt.Sprintf("%q is not a registration code like ab123ab123", f.v)}
		}
	}
	if is.Maintainer != "" && !codePattern.MatchString(is.Maintainer) {
		return &fiscal.ValidationError{Field: "maintainer", Message: fmt.Sprintf("%q is not a registration code like ab123ab123", is.Maintainer)}
	}
	if !tinPattern.MatchString(is.TIN) {
		return &fiscal.ValidationError{Field: "tin", Message: fmt.Sprintf("%q is not 8 or 13 digits", is.TIN)}
	}
	if err := checkLen("seller_name", is.Name, 100, true); err != nil {
		return err
	}
	if err := checkLen("seller_address", is.Address, 200, false); err != nil {
		return err
	}
	return checkLen("seller_town", is.Town, 100, false)
}

func checkLen(field, v string, max int, required bool) error {
	n := utf8.RuneCountInString(v)
	if required && n == 0 {
		return &fiscal.ValidationError{Field: field, Message: "is required"}
	}
	if n > max {
		return &fiscal.ValidationError{Field: field, Message: fmt.Sprintf("has %d characters, at most %d", n, max)}
	}
	return nil
}

// Invoice is the Invoice element of a RegisterInvoiceRequest (spec
// 3.7.1), with amounts in minor units and every text as it is sent.
type Invoice struct {
	TypeOfInv     string // CASH or NONCASH
	InvType       string // INVOICE or CORRECTIVE
	IssueDateTime string // exactly as the IIC signed it
	InvNum        string // BU/ordinal/year/TCR
	InvOrdNum     int64
	TCRCode       string
	BusinUnitCode string
	SoftCode      string
	OperatorCode  string
	IsIssuerInVAT bool
	TotPriceWoVAT int64
	TotVATAmt     int64
	TotPrice      int64
	IIC           string
	IICSignature  string
	Corrective    *CorrectiveInv
	PayMethods    []PayMethod
	Seller        Seller
	Items         []Item
	SameTaxes     []SameTax
}

// CorrectiveInv refers a refund or void to the invoice it corrects.
type CorrectiveInv struct {
	IICRef        string
	IssueDateTime string
	Type          string // CORRECTIVE
}

// PayMethod is one payment type and the amount it settles.
type PayMethod struct {
	Type string // BANKNOTE, CARD, …
	Amt  int64
}

// Seller is the issuer as the invoice names it.
type Seller struct {
	IDType, IDNum, Name, Address, Town, Country string
}

// Item is an invoice line (element I).
type Item struct {
	N        string
	U        string
	Q        string
	UPB, UPA int64 // unit price before and after VAT
	R        string
	RR       bool
	PB, PA   int64 // line before and after VAT
	VR       string
	VA       int64
}

// SameTax is the sum of the lines at one VAT rate.
type SameTax struct {
	NumOfItems  int
	PriceBefVAT int64
	VATRate     string
	VATAmt      int64
}

// Pay types of the spec's PaymentMethodTypeSType for posgate's payment
// types. BANKNOTE and CARD make a CASH invoice (functional spec,
// "Račun"); the others make it NONCASH.
var payTypes = map[string]string{
	fiscal.PayCash: "BANKNOTE",
	fiscal.PayCard: "CARD",
	"account":      "ACCOUNT",
	"order":        "ORDER",
	"voucher":      "SVOUCHER",
	"company_card": "BUSINESSCARD",
	"other":        "OTHER",
}

// MaxItems is the schema's limit of lines on one invoice (InvoiceItemsType).
const MaxItems = 1000

// BuildInvoice returns the Invoice element for inv, signed by the IIC
// scheme; orig is the invoice a refund or void corrects (nil for a
// sale). It refuses, naming the API field, anything the service's
// schema would refuse: the service must never be the first to notice.
func BuildInvoice(inv fiscal.Invoice, orig *fiscal.Invoice, is Issuer) (Invoice, error) {
	parts := strings.Split(inv.Signature.SignedString, "|")
	if len(parts) != 7 {
		return Invoice{}, &fiscal.ValidationError{Field: "fiscal_signature", Message: "the invoice carries no IIC signed string"}
	}
	if !isHex(32, inv.Signature.Code) {
		return Invoice{}, &fiscal.ValidationError{Field: "fiscal_signature", Message: "the IIC is not 32 hex digits"}
	}
	if !isHex(512, inv.Signature.Value) {
		// IICSignature is Hex512SType: the service takes RSA-2048 keys only.
		return Invoice{}, &fiscal.ValidationError{Field: "certificate_id",
			Message: fmt.Sprintf("the certificate's key gives a %d-digit IIC signature; the service takes 512 (RSA-2048)", len(inv.Signature.Value))}
	}
	if !invNum.MatchString(inv.Number) {
		return Invoice{}, &fiscal.ValidationError{Field: "number", Message: fmt.Sprintf("%q is not BU/ordinal/year/TCR with registration codes", inv.Number)}
	}
	if len(inv.Items) > MaxItems {
		return Invoice{}, &fiscal.ValidationError{Field: "items", Message: fmt.Sprintf("%d lines; the service takes at most %d per invoice", len(inv.Items), MaxItems)}
	}
	country := is.Country
	if country == "" {
		country = "MNE"
	}
	out := Invoice{
		TypeOfInv:     "CASH",
		InvType:       "INVOICE",
		IssueDateTime: parts[1],
		InvNum:        inv.Number,
		InvOrdNum:     inv.Ordinal,
		TCRCode:       inv.Device,
		BusinUnitCode: inv.BusinessUnit,
		SoftCode:      inv.Software,
		OperatorCode:  is.Operator,
		IsIssuerInVAT: is.InVAT,
		TotPriceWoVAT: inv.Totals.Net,
		TotVATAmt:     inv.Totals.VAT,
		TotPrice:      inv.Totals.Total,
		IIC:           inv.Signature.Code,
		IICSignature:  inv.Signature.Value,
		Seller: Seller{IDType: "TIN", IDNum: parts[0], Name: is.Name, Address: is.Address,
			Town: is.Town, Country: country},
	}
	if !is.InVAT {
		out.TotPriceWoVAT, out.TotVATAmt = inv.Totals.Total, 0
	}
	if inv.Type != fiscal.TypeSale {
		if orig == nil {
			return Invoice{}, &fiscal.ValidationError{Field: "original_invoice_id", Message: "a corrective invoice needs its original"}
		}
		op := strings.Split(orig.Signature.SignedString, "|")
		if len(op) != 7 || !isHex(32, orig.Signature.Code) {
			return Invoice{}, &fiscal.ValidationError{Field: "original_invoice_id", Message: "the original invoice has no IIC"}
		}
		out.InvType = "CORRECTIVE"
		out.Corrective = &CorrectiveInv{IICRef: orig.Signature.Code, IssueDateTime: op[1], Type: "CORRECTIVE"}
	}
	// Pay methods: one per type (the schema's UniquePayMethodType); the
	// change given back comes off the cash.
	change := inv.Totals.Change
	byType := map[string]int{}
	for i, p := range inv.Payments {
		t, ok := payTypes[p.Type]
		if !ok {
			return Invoice{}, &fiscal.ValidationError{Field: fmt.Sprintf("payments[%d].type", i), Message: fmt.Sprintf("%q has no pay method of the fiscal service", p.Type)}
		}
		amt := p.Amount
		if p.Type == fiscal.PayCash && change != 0 {
			amt -= change
			change = 0
		}
		if j, ok := byType[t]; ok {
			out.PayMethods[j].Amt += amt
			continue
		}
		byType[t] = len(out.PayMethods)
		out.PayMethods = append(out.PayMethods, PayMethod{Type: t, Amt: amt})
	}
	if len(out.PayMethods) == 0 {
		return Invoice{}, &fiscal.ValidationError{Field: "payments", Message: "the service needs at least one pay method"}
	}
	if len(out.PayMethods) > 10 {
		return Invoice{}, &fiscal.ValidationError{Field: "payments", Message: "the service takes at most 10 pay methods"}
	}
	cash := false
	for _, p := range out.PayMethods {
		if p.Type == "BANKNOTE" || p.Type == "CARD" {
			cash = true
		}
	}
	if !cash {
		out.TypeOfInv = "NONCASH"
	}
	counts := map[string]int{}
	for i, it := range inv.Items {
		x, err := buildItem(i, it, inv.Type != fiscal.TypeSale, is.InVAT)
		if err != nil {
			return Invoice{}, err
		}
		counts[x.VR]++
		out.Items = append(out.Items, x)
	}
	if is.InVAT {
		for _, rt := range inv.Totals.PerRate {
			r, err := rate(string(rt.VATRate))
			if err != nil {
				return Invoice{}, &fiscal.ValidationError{Field: "totals.per_rate", Message: err.Error()}
			}
			out.SameTaxes = append(out.SameTaxes, SameTax{NumOfItems: counts[r], PriceBefVAT: rt.Net, VATRate: r, VATAmt: rt.VAT})
		}
		if len(out.SameTaxes) > 20 {
			return Invoice{}, &fiscal.ValidationError{Field: "items", Message: "the service takes at most 20 VAT rates per invoice"}
		}
	}
	return out, nil
}

// buildItem turns a line into element I. Prices include VAT; the line's
// net is its gross ÷ (1 + rate) rounded half away from zero, as posgate
// rounds per rate (docs/fiscal.md). On a corrective invoice the quantity
// and the line amounts are negative and the unit prices stay positive
// (functional spec, corrective invoices).
func buildItem(i int, it fiscal.Item, negative, inVAT bool) (Item, error) {
	field := func(f string) string { return fmt.Sprintf("items[%d].%s", i, f) }
	n := utf8.RuneCountInString(it.Name)
	if n == 0 || n > 50 {
		return Item{}, &fiscal.ValidationError{Field: field("name"), Message: fmt.Sprintf("has %d characters; the fiscal service takes 1 to 50", n)}
	}
	q := string(it.Quantity)
	if negative && !strings.HasPrefix(q, "-") {
		q = "-" + q
	}
	if !quantityPat.MatchString(q) {
		return Item{}, &fiscal.ValidationError{Field: field("quantity"), Message: fmt.Sprintf("%q is not a quantity the service takes", q)}
	}
	r, err := rate(string(it.VATRate))
	if err != nil {
		return Item{}, &fiscal.ValidationError{Field: field("vat_rate"), Message: err.Error()}
	}
	bp := basisPoints(r)
	x := Item{N: it.Name, U: "piece", Q: q, UPA: it.UnitPrice, PA: it.Amount}
	if inVAT {
		x.UPB = netOf(it.UnitPrice, bp)
		x.PB = netOf(it.Amount, bp)
		x.VR = r
		x.VA = x.PA - x.PB
	} else {
		x.UPB, x.PB = x.UPA, x.PA
	}
	if it.Discount > 0 {
		gross := it.Amount
		if gross < 0 {
			gross = -gross
		}
		if full := gross + it.Discount; full > 0 {
			// R is the rebate in percent of the undiscounted line, two
			// decimals; RR says it reduces the VAT base.
			x.R = fiscal.Money(divRound(it.Discount*10000, full)).String()
			x.RR = true
		}
	}
	return x, nil
}

// rate formats a VAT rate in percent ("21", "9.5") as the schema's
// Decimal4SType with two decimals ("21.00", "9.50").
func rate(s string) (string, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 {
		return "", fmt.Errorf("%q is not a VAT rate with at most 2 decimals", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w < 0 || w > 100 {
		return "", fmt.Errorf("%q is not a VAT rate from 0 to 100", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	return strconv.FormatInt(w, 10) + "." + frac, nil
}

// basisPoints parses a rate from rate() into hundredths of a percent.
func basisPoints(r string) int64 {
	v, _ := strconv.ParseInt(strings.Replace(r, ".", "", 1), 10, 64)
	return v
}

// netOf is gross ÷ (1 + bp/10000), rounded half away from zero, with a
// 128-bit intermediate (a line may reach 10^15 minor units).
func netOf(gross, bp int64) int64 {
	if gross < 0 {
		return -netOf(-gross, bp)
	}
	d := uint64(10000 + bp)
	hi, lo := bits.Mul64(uint64(gross), 10000)
	lo, carry := bits.Add64(lo, d/2, 0)
	q, _ := bits.Div64(hi+carry, lo, d)
	return int64(q)
}

func divRound(a, b int64) int64 {
	if a < 0 {
		return -divRound(-a, b)
	}
	return (a + b/2) / b
}

// isHex reports whether s is n hex digits, either case (the IIC and its
// signature). A loop, not a regexp: a counted repetition such as {512}
// compiles to a program of that many states, kept for the process's life.
func isHex(n int, s string) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
