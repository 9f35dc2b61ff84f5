package me

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/posgate/posgate/fiscal"
)

// Options configure a Profile.
type Options struct {
	Issuer Issuer
	// Client posts to the service; nil means no service is configured
	// (fiscal.service_url empty) and Send fails as offline.
	Client *Client
	// Location is the zone of SendDateTime and ChangeDateTime. Default
	// Europe/Podgorica.
	Location *time.Location
}

// Profile registers posgate's invoices, device and cash deposits with
// the Montenegrin fiscal service. It implements fiscal.Registrar.
type Profile struct {
	opts Options
}

var _ fiscal.Registrar = (*Profile)(nil)

// ErrNoService: fiscal.service_url is not set, so nothing is sent.
var ErrNoService = errors.New("me: no fiscal service configured (fiscal.service_url)")

// New checks opts.Issuer and returns the profile.
func New(opts Options) (*Profile, error) {
	if err := opts.Issuer.Check(); err != nil {
		return nil, err
	}
	if opts.Location == nil {
		loc, err := time.LoadLocation("Europe/Podgorica")
		if err != nil {
			return nil, fmt.Errorf("me: load zone: %w", err)
		}
		opts.Location = loc
	}
	return &Profile{opts: opts}, nil
}

// Check implements fiscal.Registrar.
func (p *Profile) Check(inv fiscal.Invoice, orig *fiscal.Invoice) error {
	_, err := BuildInvoice(inv, orig, p.opts.Issuer)
	return err
}

// subseq is the SubseqDelivType of a re-sent or late request: the link
// was down (NOINTERNET), the service failed (SERVICE), or something else
// kept it (TECHNICALERROR).
func subseq(a fiscal.Attempt) string {
	if !a.Resend {
		return ""
	}
	switch a.LastClass {
	case fiscal.ClassOffline, "":
		return SubseqNoInternet
	case fiscal.ClassTemporary:
		return SubseqService
	default:
		return SubseqTechnicalError
	}
}

// Build implements fiscal.Registrar.
func (p *Profile) Build(ctx context.Context, a fiscal.Attempt) ([]byte, error) {
	h := NewHeader(a.Now, p.opts.Location, subseq(a))
	is := p.opts.Issuer
	var b []byte
	var err error
	switch a.Kind {
	case fiscal.KindInvoice:
		msg, berr := BuildInvoice(*a.Invoice, a.Original, is)
		if berr != nil {
			return nil, rejected(berr)
		}
		b, err = SignedEnvelope(InvoiceElement(h, msg), a.Signer, a.Certificate)
	case fiscal.KindTCR:
		var t fiscal.TCRRegistration
		if err := json.Unmarshal(a.Payload, &t); err != nil {
			return nil, rejected(fmt.Errorf("decode TCR registration: %w", err))
		}
		typ := "REGULAR"
		if strings.EqualFold(t.Type, "vending") {
			typ = "VENDING"
		}
		b, err = SignedEnvelope(TCRElement(h, TCR{IssuerTIN: is.TIN, BusinUnitCode: is.BusinessUnit, TCRIntID: t.InternalID,
			SoftCode: is.Software, MaintainerCode: is.Maintainer, ValidFrom: t.ValidFrom, Type: typ}), a.Signer, a.Certificate)
	case fiscal.KindCashDeposit:
		var d fiscal.CashDeposit
		if err := json.Unmarshal(a.Payload, &d); err != nil {
			return nil, rejected(fmt.Errorf("decode cash deposit: %w", err))
		}
		b, err = SignedEnvelope(CashDepositElement(h, CashDeposit{ChangeDateTime: FormatTime(d.At, p.opts.Location),
			Operation: strings.ToUpper(d.Operation), CashAmt: d.Amount, TCRCode: is.TCR, IssuerTIN: is.TIN}), a.Signer, a.Certificate)
	default:
		return nil, rejected(fmt.Errorf("unknown registration kind %q", a.Kind))
	}
	if err != nil {
		return nil, rejected(err)
	}
	return b, nil
}

func rejected(err error) error {
	return &fiscal.RegistrationError{Class: fiscal.ClassRejected, Message: err.Error(), Err: err}
}

var (
	responses = map[string]string{fiscal.KindInvoice: "RegisterInvoiceResponse", fiscal.KindTCR: "RegisterTCRResponse",
		fiscal.KindCashDeposit: "RegisterCashDepositResponse"}
	actions = map[string]string{fiscal.KindInvoice: ActionRegisterInvoice, fiscal.KindTCR: ActionRegisterTCR,
		fiscal.KindCashDeposit: ActionRegisterCashDeposit}
)

// Send implements fiscal.Registrar.
func (p *Profile) Send(ctx context.Context, kind string, req []byte) (string, []byte, error) {
	if p.opts.Client == nil {
		return "", nil, &fiscal.RegistrationError{Class: fiscal.ClassOffline, Message: ErrNoService.Error(), Err: ErrNoService}
	}
	answer, r, err := p.opts.Client.Post(ctx, actions[kind], req, responses[kind])
	if err == nil {
		return r.Code, answer, nil
	}
	var xe *ExchangeError
	if !errors.As(err, &xe) {
		return "", answer, &fiscal.RegistrationError{Class: fiscal.ClassTemporary, Message: err.Error(), Err: err}
	}
	re := &fiscal.RegistrationError{Class: xe.Class, Message: xe.Error(), Err: err}
	if xe.Fault != nil {
		re.Code, re.Message = xe.Fault.Code, xe.Fault.Message
		if re.Message == "" {
			re.Message = Describe(re.Code)
		}
		re.Blocking = xe.Class == ClassRejected && Blocking(re.Code)
	}
	return "", answer, re
}
