package fiscal

import (
	"context"
	"crypto"
	"time"
)

// Scheme signs an invoice the way a tax authority prescribes and says
// where a customer can check it. Implementations live in sub-packages
// (fiscal/iic for Montenegro and Albania) and are chosen in cmd/posgate.
type Scheme interface {
	// ID names the scheme in invoices and webhooks, e.g. "ME-IIC".
	ID() string
	// Sign signs d with key. It returns an error if the key's type does
	// not fit the scheme (an ECDSA key for an RSA scheme) or the signer
	// fails; it never returns a partial Signature.
	Sign(ctx context.Context, key crypto.Signer, d Document) (Signature, error)
	// Verify checks sig against pub: the code matches the signature and
	// the signature matches the signed string. Receivers of webhooks can
	// do the same with the certificate's public key.
	Verify(pub crypto.PublicKey, sig Signature) error
}

// Document is what a scheme signs: the identifiers of the issuer and the
// invoice's number, time and total. Every field is exactly what goes into
// the signed string, so a scheme does formatting only.
type Document struct {
	TIN          string    // taxpayer identification number of the issuer
	IssuedAt     time.Time // issue time; schemes format it in their own zone
	Ordinal      int64     // gapless number within business unit, device and year
	BusinessUnit string    // business unit (premises) code
	Device       string    // electronic cash register (TCR/ENU) code
	Software     string    // certified software code
	Total        Money     // total including VAT, negative for refunds and voids
}

// Signature is a scheme's result, stored on the invoice and sent in its
// webhook: enough for anyone holding the certificate to re-verify it.
type Signature struct {
	Scheme string `json:"scheme"`
	// Code is the short code printed on the receipt (the IIC for ME-IIC).
	Code string `json:"code"`
	// Value is the full signature as the scheme encodes it (hex for ME-IIC).
	Value string `json:"signature"`
	// SignedString is the exact text that was signed.
	SignedString string `json:"signed_string"`
	// VerifyURL is where a customer checks the receipt; also its QR code.
	VerifyURL string `json:"verify_url"`
	// CertificateSerial and CertificateSHA256 identify the signing
	// certificate (hex serial, hex SHA-256 of its DER). Filled by fiscal.
	CertificateSerial string `json:"certificate_serial"`
	CertificateSHA256 string `json:"certificate_sha256"`
}
