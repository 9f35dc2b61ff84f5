package iic

import (
	"context"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	// Embedded zone data: a POS box's minimal OS image often has no
	// /usr/share/zoneinfo, and the signed time must carry the local offset.
	_ "time/tzdata"

	"github.com/posgate/posgate/fiscal"
)

// ID is the scheme's name in invoices and webhooks.
const ID = "ME-IIC"

// Countries and environments.
const (
	Montenegro = "me"
	Albania    = "al"

	Test       = "test"
	Production = "production"
)

// Errors.
var (
	ErrNotRSA        = errors.New("iic: the certificate's key is not RSA; the scheme signs with RSA-SHA256")
	ErrCodeMismatch  = errors.New("iic: the code is not the MD5 of the signature")
	ErrBadSignature  = errors.New("iic: the signature does not match the signed string")
	ErrMissingFields = errors.New("iic: TIN, business unit, device and software codes are required")
)

// profile is one country's verification portal.
type profile struct {
	production, test string
	// params lists the query parameters in the order the portal's own
	// receipts use; both portals take the same names.
	params []string
	zone   string
}

var profiles = map[string]profile{
	Montenegro: {
		production: "https://mapr.tax.gov.me/ic/#/verify",
		test:       "https://efitest.tax.gov.me/ic/#/verify",
		params:     []string{"tin", "iic", "crtd", "ord", "bu", "cr", "sw", "prc"},
		zone:       "Europe/Podgorica",
	},
	Albania: {
		production: "https://efiskalizimi-app.tatime.gov.al/invoice-check/#/verify",
		test:       "https://efiskalizimi-app-test.tatime.gov.al/invoice-check/#/verify",
		params:     []string{"iic", "tin", "crtd", "ord", "bu", "cr", "sw", "prc"},
		zone:       "Europe/Tirane",
	},
}

// Options configure the scheme. The zero value is Montenegro's test
// portal in Montenegro's time zone.
type Options struct {
	// Country is "me" (default) or "al": it picks the portal, the order
	// of its query parameters and the default time zone.
	Country string
	// Environment is "test" (default) or "production": the portal's host.
	Environment string
	// VerifyURL replaces the portal address (everything before the "?"),
	// e.g. for a new host the authority announces. Optional.
	VerifyURL string
	// Location is the zone IssueDateTime is written in. Default: the
	// country's (Europe/Podgorica, Europe/Tirane).
	Location *time.Location
}

// Scheme is the IIC scheme. It is safe for concurrent use.
type Scheme struct {
	base   string
	params []string
	loc    *time.Location
}

var _ fiscal.Scheme = (*Scheme)(nil)

// New returns the scheme for opts. It fails on an unknown country or
// environment, naming the bad value.
func New(opts Options) (*Scheme, error) {
	if opts.Country == "" {
		opts.Country = Montenegro
	}
	if opts.Environment == "" {
		opts.Environment = Test
	}
	p, ok := profiles[strings.ToLower(opts.Country)]
	if !ok {
		return nil, fmt.Errorf("iic: country %q: want %q or %q", opts.Country, Montenegro, Albania)
	}
	s := &Scheme{params: p.params, loc: opts.Location}
	switch opts.Environment {
	case Test:
		s.base = p.test
	case Production:
		s.base = p.production
	default:
		return nil, fmt.Errorf("iic: environment %q: want %q or %q", opts.Environment, Test, Production)
	}
	if opts.VerifyURL != "" {
		s.base = strings.TrimRight(opts.VerifyURL, "?")
	}
	if s.loc == nil {
		loc, err := time.LoadLocation(p.zone)
		if err != nil {
			return nil, fmt.Errorf("iic: load zone %s: %w", p.zone, err)
		}
		s.loc = loc
	}
	return s, nil
}

// ID implements fiscal.Scheme.
func (s *Scheme) ID() string { return ID }

// IssueDateTime formats t as the scheme signs it: ISO 8601 with seconds
// and the local offset, e.g. 2019-06-12T17:05:43+02:00.
func (s *Scheme) IssueDateTime(t time.Time) string {
	return t.In(s.loc).Format("2006-01-02T15:04:05-07:00")
}

// SignedString returns the exact text the scheme signs:
// TIN|IssueDateTime|InvOrdNum|BusinUnitCode|TCRCode|SoftCode|TotPrice.
// InvOrdNum is the bare ordinal, not the formatted invoice number, and
// TotPrice has a dot, two decimals and no thousands separators.
func (s *Scheme) SignedString(d fiscal.Document) string {
	return strings.Join([]string{
		d.TIN, s.IssueDateTime(d.IssuedAt), strconv.FormatInt(d.Ordinal, 10),
		d.BusinessUnit, d.Device, d.Software, d.Total.String(),
	}, "|")
}

// Code returns the IIC of a signature: upper-case hex MD5 of the raw
// signature bytes (not of their hex text).
func Code(sig []byte) string {
	h := md5.Sum(sig)
	return strings.ToUpper(hex.EncodeToString(h[:]))
}

// VerifyURL returns the portal address with the receipt's parameters, in
// the portal's order, each query-escaped (the offset's "+" becomes %2B;
// printed unescaped, it would reach the portal as a space).
func (s *Scheme) VerifyURL(d fiscal.Document, code string) string {
	vals := map[string]string{
		"tin":  d.TIN,
		"iic":  code,
		"crtd": s.IssueDateTime(d.IssuedAt),
		"ord":  strconv.FormatInt(d.Ordinal, 10),
		"bu":   d.BusinessUnit,
		"cr":   d.Device,
		"sw":   d.Software,
		"prc":  d.Total.String(),
	}
	var b strings.Builder
	b.WriteString(s.base)
	for i, k := range s.params {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(k + "=" + url.QueryEscape(vals[k]))
	}
	return b.String()
}

// Sign implements fiscal.Scheme: RSA PKCS#1 v1.5 over the SHA-256 of the
// signed string. The signature is deterministic, so the same invoice and
// key always give the same IIC.
func (s *Scheme) Sign(ctx context.Context, key crypto.Signer, d fiscal.Document) (fiscal.Signature, error) {
	if d.TIN == "" || d.BusinessUnit == "" || d.Device == "" || d.Software == "" {
		return fiscal.Signature{}, ErrMissingFields
	}
	if _, ok := key.Public().(*rsa.PublicKey); !ok {
		return fiscal.Signature{}, ErrNotRSA
	}
	if err := ctx.Err(); err != nil {
		return fiscal.Signature{}, err
	}
	msg := s.SignedString(d)
	digest := sha256.Sum256([]byte(msg))
	// crypto.SHA256 as SignerOpts (not *rsa.PSSOptions) selects PKCS#1 v1.5
	// for RSA keys, also for PKCS#11 and TPM signers.
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return fiscal.Signature{}, fmt.Errorf("iic: sign: %w", err)
	}
	code := Code(sig)
	return fiscal.Signature{
		Scheme:       ID,
		Code:         code,
		Value:        strings.ToUpper(hex.EncodeToString(sig)),
		SignedString: msg,
		VerifyURL:    s.VerifyURL(d, code),
	}, nil
}

// Verify implements fiscal.Scheme.
func (s *Scheme) Verify(pub crypto.PublicKey, sig fiscal.Signature) error {
	rpub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return ErrNotRSA
	}
	raw, err := hex.DecodeString(sig.Value)
	if err != nil {
		return fmt.Errorf("iic: signature is not hex: %w", err)
	}
	if Code(raw) != sig.Code {
		return ErrCodeMismatch
	}
	digest := sha256.Sum256([]byte(sig.SignedString))
	if err := rsa.VerifyPKCS1v15(rpub, crypto.SHA256, digest[:], raw); err != nil {
		return ErrBadSignature
	}
	return nil
}
