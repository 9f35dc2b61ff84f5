package fiscal

import (
	"bytes"
	"encoding/json"
	"reflect"
	"time"
)

// Invoice types.
const (
	TypeSale   = "sale"
	TypeRefund = "refund" // returns some or all of an earlier sale
	TypeVoid   = "void"   // cancels an earlier sale as a whole
)

// Payment types.
const (
	PayCash = "cash"
	PayCard = "card"
)

// NewInvoice is a request to issue an invoice, as POST /v1/invoices
// takes it. Amounts are positive minor units for every type; a refund's
// or void's invoice carries them negated.
type NewInvoice struct {
	Type              string       `json:"type"`
	Items             []NewItem    `json:"items"`
	Payments          []NewPayment `json:"payments"`
	OriginalInvoiceID string       `json:"original_invoice_id"`
	Currency          string       `json:"currency"`
	// CertificateID, if given, must be the certificate bound to the
	// caller's API key; it lets a client assert which one signs.
	CertificateID string `json:"certificate_id"`
}

// NewItem is one line of a NewInvoice.
type NewItem struct {
	Name      string  `json:"name"`
	Quantity  Decimal `json:"quantity"`   // at most 3 decimals
	UnitPrice int64   `json:"unit_price"` // minor units, VAT included
	VATRate   Decimal `json:"vat_rate"`   // percent, at most 2 decimals: 21, 9.5
	Discount  int64   `json:"discount"`   // minor units off the line
}

// NewPayment is one payment of a NewInvoice.
type NewPayment struct {
	Type      string `json:"type"`       // cash or card
	Amount    int64  `json:"amount"`     // minor units
	PaymentID string `json:"payment_id"` // card only: the payment it settles
}

// Decimal is a JSON number kept as its text, so that validation can
// parse it exactly (no float rounding) and refuse too many decimals with
// the field's name. A string, bool, object or array is a type error.
type Decimal string

// UnmarshalJSON implements json.Unmarshaler.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		kind := "string"
		switch {
		case len(b) > 0 && b[0] == '{':
			kind = "object"
		case len(b) > 0 && b[0] == '[':
			kind = "array"
		case string(b) == "true" || string(b) == "false":
			kind = "bool"
		}
		// encoding/json adds the field's name to an UnmarshalTypeError.
		return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[float64]()}
	}
	*d = Decimal(b)
	return nil
}

// Invoice is an issued invoice, as the API returns it and as its
// invoice.created event carries it.
type Invoice struct {
	ID                string    `json:"id"`
	Type              string    `json:"type"`
	Number            string    `json:"number"` // business unit/ordinal/year/device
	Ordinal           int64     `json:"ordinal"`
	Year              int       `json:"year"`
	BusinessUnit      string    `json:"business_unit"`
	Device            string    `json:"device"`
	Software          string    `json:"software"`
	TIN               string    `json:"tin"`
	OriginalInvoiceID *string   `json:"original_invoice_id"`
	Currency          string    `json:"currency"`
	IssuedAt          time.Time `json:"issued_at"`
	Items             []Item    `json:"items"`
	Payments          []Payment `json:"payments"`
	Totals            Totals    `json:"totals"`
	Signature         Signature `json:"fiscal_signature"`
	// SaleNumber is a unique sale number the profile assigns, printed
	// with the receipt (bg: the UNP given at receipt open); "" if none.
	SaleNumber    string `json:"sale_number,omitempty"`
	CertificateID string `json:"certificate_id"`
	KeyID         string `json:"api_key_id"`
	// Print is the invoice's print job, when a printer is configured.
	Print *PrintStatus `json:"print,omitempty"`
	// Fiscalization is the registration with the tax service, for the
	// profiles that register (me, al).
	Fiscalization *FiscalizationStatus `json:"fiscalization,omitempty"`
}

// Item is an invoice line with its computed amount.
type Item struct {
	Name      string      `json:"name"`
	Quantity  json.Number `json:"quantity"`
	UnitPrice int64       `json:"unit_price"`
	VATRate   json.Number `json:"vat_rate"`
	Discount  int64       `json:"discount"`
	// Amount is the line total, VAT included: negative on refunds and voids.
	Amount int64 `json:"amount"`

	quantity int64 // thousandths
	rate     int64 // hundredths of a percent
}

// Payment is a payment of an invoice; negative on refunds and voids.
type Payment struct {
	Type      string `json:"type"`
	Amount    int64  `json:"amount"`
	PaymentID string `json:"payment_id,omitempty"`
}

// Totals are an invoice's sums, VAT included, per VAT rate and overall.
type Totals struct {
	Total   int64       `json:"total"`
	Net     int64       `json:"net"`
	VAT     int64       `json:"vat"`
	Paid    int64       `json:"paid"`
	Change  int64       `json:"change"`
	PerRate []RateTotal `json:"per_rate"`
}

// RateTotal is the sum of the lines at one VAT rate.
type RateTotal struct {
	VATRate json.Number `json:"vat_rate"`
	Gross   int64       `json:"gross"`
	Net     int64       `json:"net"`
	VAT     int64       `json:"vat"`
}

// PrintStatus is the state of an invoice's print job.
type PrintStatus struct {
	PrinterID     string     `json:"printer_id"`
	State         string     `json:"state"` // pending, printed, dead
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"last_error,omitempty"`
	ReceiptNumber int        `json:"receipt_number,omitempty"`
	FiscalMemory  string     `json:"fiscal_memory_serial,omitempty"`
	PrintedAt     *time.Time `json:"printed_at,omitempty"`
}
