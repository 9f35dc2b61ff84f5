package fiscal

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidationError is a request the fiscal rules refuse. Field names the
// offending JSON field, e.g. "items[2].quantity".
type ValidationError struct {
	Field   string
	Message string
	// Unprocessable marks a well-formed request that what it refers to
	// does not allow: a card payment that does not match, a VAT rate the
	// printer lacks (HTTP 422 rather than 400).
	Unprocessable bool
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

func unprocessable(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...), Unprocessable: true}
}

// Validation bounds. They keep every product and sum far inside int64:
// 100000.000 × 100,000,000.00 is 10^18 thousandths of a minor unit.
const (
	MaxItems       = 300 // keeps the invoice.created event under the outbox's 256 KiB
	MaxPayments    = 20
	MaxNameLen     = 72             // a Datecs item name's limit
	MaxQuantity    = 100_000_000    // thousandths: 100000.000
	MaxUnitPrice   = 10_000_000_000 // minor units: 100,000,000.00
	MaxPaymentID   = 64
	maxRateHundred = 100_00 // 100.00 %
)

// validate checks a request's shape and computes its lines, payments and
// totals. A void's lines come from the invoice it voids, so for a void
// only the shape is checked here. rates are the VAT rates the device
// knows, in hundredths of a percent.
func validate(req NewInvoice, currency string, rates []int64) ([]Item, []Payment, error) {
	switch req.Type {
	case TypeSale, TypeRefund, TypeVoid:
	case "":
		return nil, nil, invalid("type", "is required: sale, refund or void")
	default:
		return nil, nil, invalid("type", "%q is not sale, refund or void", req.Type)
	}
	if req.Currency != "" && req.Currency != currency {
		return nil, nil, invalid("currency", "%q is not this device's currency %s", req.Currency, currency)
	}
	switch {
	case req.Type == TypeSale && req.OriginalInvoiceID != "":
		return nil, nil, invalid("original_invoice_id", "must be empty for a sale")
	case req.Type != TypeSale && req.OriginalInvoiceID == "":
		return nil, nil, invalid("original_invoice_id", "is required for a %s", req.Type)
	}
	if req.Type == TypeVoid {
		if len(req.Items) > 0 {
			return nil, nil, invalid("items", "must be empty for a void: it voids the original invoice's items")
		}
		if len(req.Payments) > 0 {
			return nil, nil, invalid("payments", "must be empty for a void: the original invoice's payments are reversed")
		}
		return nil, nil, nil
	}
	if len(req.Items) == 0 {
		return nil, nil, invalid("items", "at least one item is required")
	}
	if len(req.Items) > MaxItems {
		return nil, nil, invalid("items", "at most %d items", MaxItems)
	}
	items := make([]Item, len(req.Items))
	for i, in := range req.Items {
		it, err := validateItem(fmt.Sprintf("items[%d]", i), in, rates)
		if err != nil {
			return nil, nil, err
		}
		items[i] = it
	}
	if len(req.Payments) == 0 {
		return nil, nil, invalid("payments", "at least one payment is required")
	}
	if len(req.Payments) > MaxPayments {
		return nil, nil, invalid("payments", "at most %d payments", MaxPayments)
	}
	pays := make([]Payment, len(req.Payments))
	for i, p := range req.Payments {
		f := fmt.Sprintf("payments[%d]", i)
		switch p.Type {
		case PayCash:
			if p.PaymentID != "" {
				return nil, nil, invalid(f+".payment_id", "only a card payment has a payment_id")
			}
		case PayCard:
			if len(p.PaymentID) > MaxPaymentID || !printableASCII(p.PaymentID) {
				return nil, nil, invalid(f+".payment_id", "must be at most %d printable ASCII characters", MaxPaymentID)
			}
		case "":
			return nil, nil, invalid(f+".type", "is required: cash or card")
		default:
			return nil, nil, invalid(f+".type", "%q is not cash or card", p.Type)
		}
		if p.Amount <= 0 || p.Amount > MaxUnitPrice {
			return nil, nil, invalid(f+".amount", "must be a positive amount in minor units, at most %d", int64(MaxUnitPrice))
		}
		pays[i] = Payment(p)
	}
	return items, pays, nil
}

func validateItem(f string, in NewItem, rates []int64) (Item, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > MaxNameLen || !utf8.ValidString(name) ||
		strings.ContainsFunc(name, unicode.IsControl) {
		return Item{}, invalid(f+".name", "must be 1 to %d printable characters", MaxNameLen)
	}
	if in.Quantity == "" {
		return Item{}, invalid(f+".quantity", "is required")
	}
	q, err := parseDecimal(string(in.Quantity), 3)
	if err != nil || q <= 0 || q > MaxQuantity {
		return Item{}, invalid(f+".quantity", "must be a number above 0 and at most 100000 with at most 3 decimals, got %s", in.Quantity)
	}
	if in.UnitPrice < 0 || in.UnitPrice > MaxUnitPrice {
		return Item{}, invalid(f+".unit_price", "must be 0 to %d minor units", int64(MaxUnitPrice))
	}
	if in.VATRate == "" {
		return Item{}, invalid(f+".vat_rate", "is required, in percent (e.g. 21 or 9.5)")
	}
	r, err := parseDecimal(string(in.VATRate), 2)
	if err != nil || r < 0 || r > maxRateHundred {
		return Item{}, invalid(f+".vat_rate", "must be a percentage from 0 to 100 with at most 2 decimals, got %s", in.VATRate)
	}
	if !slices.Contains(rates, r) {
		known := make([]string, len(rates))
		for i, k := range rates {
			known[i] = formatDecimal(k, 2)
		}
		// The request is well-formed; the printer cannot print it (422).
		return Item{}, unprocessable(f+".vat_rate", "%s is not a VAT rate of this device (it has %s)", formatDecimal(r, 2), strings.Join(known, ", "))
	}
	gross := lineGross(q, in.UnitPrice)
	if in.Discount < 0 || in.Discount > gross {
		return Item{}, invalid(f+".discount", "must be 0 to the line's amount (%d minor units)", gross)
	}
	return Item{
		Name: name, Quantity: json.Number(formatDecimal(q, 3)), UnitPrice: in.UnitPrice,
		VATRate: json.Number(formatDecimal(r, 2)), Discount: in.Discount, Amount: gross - in.Discount,
		quantity: q, rate: r,
	}, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
