package nexo

import (
	"net/url"
	"strings"
	"time"

	"github.com/posgate/posgate/device"
)

// errorConditions are Response.ErrorCondition values (OpenAPI), in the
// order that gives each its TxResult.Code (1…17); 255 for one not listed.
var errorConditions = []string{"Aborted", "Busy", "Cancel", "DeviceOut", "InProgress", "InsertedCard",
	"InvalidCard", "LoggedOut", "MessageFormat", "NotAllowed", "NotFound", "PaymentRestriction", "Refusal",
	"UnavailableDevice", "UnavailableService", "UnreachableHost", "WrongPIN"}

// conditionCode is the TxResult.Code of an ErrorCondition.
func conditionCode(cond string) byte {
	for i, c := range errorConditions {
		if strings.EqualFold(c, cond) { // WrongPIN in the OpenAPI, WrongPin in Node's typings
			return byte(i + 1)
		}
	}
	return 255
}

// Ref is the TxInfo.Ref of a terminal transaction: POITransactionID's
// TransactionID and TimeStamp, which a ReversalRequest needs both of.
func Ref(id TransactionID) string {
	if id.TransactionID == "" {
		return ""
	}
	return id.TransactionID + "|" + id.TimeStamp
}

func parseRef(ref string) (TransactionID, error) {
	id, ts, ok := strings.Cut(ref, "|")
	if !ok || id == "" || ts == "" {
		return TransactionID{}, &FormatError{Reason: "bad transaction reference " + ref}
	}
	return TransactionID{TransactionID: id, TimeStamp: ts}, nil
}

// outcome maps a Response to the Terminal contract's outcome.
func outcome(r Result) (device.Outcome, byte, string) {
	if r.Result == ResultSuccess || r.Result == ResultPartial { // Partial is voided by the caller
		return device.Approved, 0, r.Result
	}
	msg := r.ErrorCondition
	if reason := additional(r.AdditionalResponse, "refusalReason"); reason != "" {
		msg += ": " + reason
	} else if m := additional(r.AdditionalResponse, "message"); m != "" {
		msg += ": " + m
	}
	switch r.ErrorCondition {
	case "Aborted", "Cancel":
		return device.Aborted, conditionCode(r.ErrorCondition), msg
	}
	return device.Declined, conditionCode(r.ErrorCondition), msg
}

// additional reads one key of AdditionalResponse (URL-encoded k=v&…).
func additional(s, key string) string {
	v, err := url.ParseQuery(s)
	if err != nil {
		return ""
	}
	return v.Get(key)
}

func paymentResult(p *PaymentResponse, poiID, currency string) device.TxResult {
	out, code, msg := outcome(p.Response)
	info := &device.TxInfo{ResultCode: code, TerminalID: poiID, Currency: currency,
		Ref: Ref(p.POIData.POITransactionID), SaleRef: p.SaleData.SaleTransactionID.TransactionID}
	if t, err := time.Parse(time.RFC3339Nano, p.POIData.POITransactionID.TimeStamp); err == nil {
		info.Date, info.Time = t.UTC().Format("0102"), t.UTC().Format("150405")
	}
	if pr := p.PaymentResult; pr != nil {
		if a := pr.AmountsResp; a != nil {
			if a.Currency != "" {
				info.Currency = a.Currency
			}
			if n, err := a.AuthorizedAmount.Minor(Exponent(info.Currency)); err == nil {
				info.Amount = n
			}
		}
		if pi := pr.PaymentInstrumentData; pi != nil && pi.CardData != nil {
			info.PAN = maskPAN(pi.CardData.MaskedPan)
			info.CardName = pi.CardData.PaymentBrand
		}
	}
	res := device.TxResult{Outcome: out, Code: code, Message: msg, Info: info}
	for _, r := range p.PaymentReceipt {
		res.Receipts = append(res.Receipts, receipt(r))
	}
	return res
}

func reversalResult(r *ReversalResponse, poiID string, amount Decimal) device.TxResult {
	out, code, msg := outcome(r.Response)
	info := &device.TxInfo{ResultCode: code, TerminalID: poiID}
	if r.POIData != nil {
		info.Ref = Ref(r.POIData.POITransactionID)
	}
	if r.ReversedAmount != "" {
		amount = r.ReversedAmount
	}
	if amount != "" {
		if n, err := amount.Minor(2); err == nil {
			info.Amount = n
		}
	}
	return device.TxResult{Outcome: out, Code: code, Message: msg, Info: info}
}

// receipt renders a PaymentReceipt: each line is URL-encoded
// "name=…&value=…&key=…" and becomes "name: value".
func receipt(r PaymentReceipt) device.TxReceipt {
	kind := ""
	switch r.DocumentQualifier {
	case "CashierReceipt":
		kind = "merchant"
	case "CustomerReceipt":
		kind = "customer"
	}
	rc := device.TxReceipt{Kind: kind}
	for _, t := range r.OutputContent.OutputText {
		v, err := url.ParseQuery(t.Text)
		if err != nil {
			rc.Lines = append(rc.Lines, t.Text)
			continue
		}
		name, value := v.Get("name"), v.Get("value")
		switch {
		case name != "" && value != "":
			rc.Lines = append(rc.Lines, name+": "+value)
		case name != "":
			rc.Lines = append(rc.Lines, name)
		default:
			rc.Lines = append(rc.Lines, value)
		}
	}
	return rc
}

// maskPAN keeps at most the first four and last four digits of a card
// number, whatever the terminal sent (docs/payments.md: masked_pan).
func maskPAN(p string) string {
	var digits []byte
	for i := 0; i < len(p); i++ {
		if p[i] >= '0' && p[i] <= '9' || p[i] == '*' || p[i] == 'X' || p[i] == 'x' {
			digits = append(digits, p[i])
		}
	}
	if len(digits) < 11 {
		return strings.Repeat("*", len(digits))
	}
	for i := 4; i < len(digits)-4; i++ {
		digits[i] = '*'
	}
	return string(digits)
}
