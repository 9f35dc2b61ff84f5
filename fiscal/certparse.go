package fiscal

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"software.sslmate.com/src/go-pkcs12"
)

// oidOrganizationIdentifier is X.520 organizationIdentifier (2.5.4.97),
// where qualified certificates carry the tax number as e.g. VATME-12345678.
var oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

// semanticsPrefix is ETSI EN 319 412-1's "VAT" / "NTR" + country + "-".
var semanticsPrefix = regexp.MustCompile(`^(VAT|NTR|TIN)[A-Z]{2}[-:]`)

// parseImport decodes a PKCS#12 file or a PEM pair into the leaf
// certificate and its private key, and checks that they belong together.
func parseImport(p ImportParams) (crypto.Signer, *x509.Certificate, error) {
	var (
		rawKey any
		leaf   *x509.Certificate
	)
	switch {
	case len(p.PKCS12) > 0 && (p.CertificatePEM != "" || p.PrivateKeyPEM != ""):
		return nil, nil, fmt.Errorf("%w: give either a PKCS#12 file or a PEM certificate and key, not both", ErrInvalidCertificate)
	case len(p.PKCS12) > 0:
		// sslmate's decoder, not x/crypto/pkcs12: the latter fails on the
		// AES/PBES2 files OpenSSL 3 writes by default (research/fiscal.md §5.1).
		k, c, _, err := pkcs12.DecodeChain(p.PKCS12, p.Password)
		if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
			return nil, nil, ErrWrongPassword
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: PKCS#12: %s", ErrInvalidCertificate, strings.TrimPrefix(err.Error(), "pkcs12: "))
		}
		rawKey, leaf = k, c
	case p.CertificatePEM != "" && p.PrivateKeyPEM != "":
		c, err := parseCertPEM(p.CertificatePEM)
		if err != nil {
			return nil, nil, err
		}
		k, err := parseKeyPEM(p.PrivateKeyPEM)
		if err != nil {
			return nil, nil, err
		}
		rawKey, leaf = k, c
	default:
		return nil, nil, fmt.Errorf("%w: give a PKCS#12 file with its password, or a PEM certificate and private key", ErrInvalidCertificate)
	}
	signer, ok := rawKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%w: unsupported private key type %T", ErrInvalidCertificate, rawKey)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, nil, ErrKeyMismatch
	}
	return signer, leaf, nil
}

func parseCertPEM(s string) (*x509.Certificate, error) {
	rest := []byte(s)
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, fmt.Errorf("%w: certificate_pem has no CERTIFICATE block", ErrInvalidCertificate)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		// The first certificate is the leaf, as in every chain file.
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate_pem: %s", ErrInvalidCertificate, strings.TrimPrefix(err.Error(), "x509: "))
		}
		return c, nil
	}
}

func parseKeyPEM(s string) (any, error) {
	// openssl ecparam -genkey writes an EC PARAMETERS block first.
	blk, rest := pem.Decode([]byte(s))
	for blk != nil && strings.HasSuffix(blk.Type, "PARAMETERS") {
		blk, rest = pem.Decode(rest)
	}
	if blk == nil {
		return nil, fmt.Errorf("%w: private_key_pem has no PEM block", ErrInvalidCertificate)
	}
	var (
		k   any
		err error
	)
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		// Legacy RFC 1423 encryption shows in the PEM headers.
		if strings.Contains(blk.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, fmt.Errorf("%w: private_key_pem is encrypted; import the PKCS#12 file instead", ErrInvalidCertificate)
		}
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w: private_key_pem is encrypted; import the PKCS#12 file instead", ErrInvalidCertificate)
	default:
		return nil, fmt.Errorf("%w: private_key_pem: unexpected %q block", ErrInvalidCertificate, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: private_key_pem: %s", ErrInvalidCertificate, strings.TrimPrefix(err.Error(), "x509: "))
	}
	return k, nil
}

// keyType names a key for listings: "RSA-2048", "ECDSA-P-256", "Ed25519".
func keyType(k crypto.PublicKey) string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA-" + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("%T", k)
	}
}

// tinOf finds the taxpayer number in a certificate's subject: the
// organizationIdentifier without its "VATME-" prefix, else the subject's
// serialNumber attribute. "" if neither is there.
func tinOf(c *x509.Certificate) string {
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidOrganizationIdentifier) {
			if s, ok := n.Value.(string); ok && s != "" {
				return semanticsPrefix.ReplaceAllString(s, "")
			}
		}
	}
	return c.Subject.SerialNumber
}
