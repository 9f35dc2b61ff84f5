package fiscal

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
)

// Certificate errors. Their text is safe to show to an operator: it never
// contains key material or the password.
var (
	ErrCertificateNotFound    = errors.New("certificate not found")
	ErrWrongPassword          = errors.New("the PKCS#12 password is incorrect")
	ErrInvalidCertificate     = errors.New("invalid certificate")
	ErrKeyMismatch            = errors.New("the private key does not belong to the certificate")
	ErrCertificateExpired     = errors.New("the certificate has expired")
	ErrCertificateNotYetValid = errors.New("the certificate is not valid yet")
	ErrCertificateExists      = errors.New("this certificate is already imported")
	ErrCertificateInactive    = errors.New("the certificate is deactivated")
	ErrAlreadyDeactivated     = errors.New("the certificate is already deactivated")
)

// Certificate states, computed when read.
const (
	CertActive      = "active"
	CertExpired     = "expired"
	CertNotYetValid = "not_yet_valid"
	CertDeactivated = "deactivated"
)

// Certificate is a taxpayer certificate as listed: never with its key.
type Certificate struct {
	ID            string     `json:"id"`
	Label         string     `json:"label"`
	Subject       string     `json:"subject"`
	Issuer        string     `json:"issuer"`
	Serial        string     `json:"serial"`            // upper-case hex
	Thumbprint    string     `json:"sha256_thumbprint"` // hex SHA-256 of the DER
	TIN           string     `json:"tin"`
	KeyType       string     `json:"key_type"`
	NotBefore     time.Time  `json:"not_before"`
	NotAfter      time.Time  `json:"not_after"`
	Status        string     `json:"status"`
	CreatedAt     time.Time  `json:"created_at"`
	DeactivatedAt *time.Time `json:"deactivated_at,omitempty"`
	// CertificatePEM is the public certificate, for verifying signatures.
	CertificatePEM string `json:"certificate_pem"`
}

// ImportParams is a certificate to import: a PKCS#12 file with its
// password, or a PEM certificate and an unencrypted PEM private key.
type ImportParams struct {
	PKCS12         []byte
	Password       string
	CertificatePEM string
	PrivateKeyPEM  string
	// Label names the certificate for people. Default: its subject CN.
	Label string
	// TIN overrides the taxpayer number read from the subject.
	TIN string
}

// CertificatesOptions configure Certificates. Master is required.
type CertificatesOptions struct {
	// Master seals private keys at rest. Required.
	Master *masterkey.Key
	// Log receives expiry warnings. Default: disabled.
	Log zerolog.Logger
	// ExpiryWarning is how long before NotAfter a certificate is reported
	// as expiring soon. Default 30 days.
	ExpiryWarning time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Certificates keeps taxpayer certificates and hands out their signers.
// It is safe for concurrent use.
type Certificates struct {
	db   *store.DB
	opts CertificatesOptions

	mu      sync.Mutex
	signers map[string]crypto.Signer // unsealed keys by certificate id
	// pems caches each certificate's PEM by its thumbprint (the SHA-256
	// of its DER, written with it): SignerTx runs twice per invoice
	// (before and in the transaction), and reading the DER and encoding
	// the PEM each time was half of what an invoice allocated.
	pems map[string]string
}

// NewCertificates returns Certificates over db.
func NewCertificates(db *store.DB, opts CertificatesOptions) *Certificates {
	if db == nil || opts.Master == nil {
		panic("fiscal: db and master key are required")
	}
	if opts.ExpiryWarning == 0 {
		opts.ExpiryWarning = 30 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Certificates{db: db, opts: opts, signers: make(map[string]crypto.Signer), pems: make(map[string]string)}
}

// Import checks and stores a certificate with its private key, sealed.
// It returns ErrWrongPassword, ErrInvalidCertificate (wrapped with the
// reason), ErrKeyMismatch, ErrCertificateExpired, ErrCertificateNotYetValid
// or ErrCertificateExists.
func (c *Certificates) Import(ctx context.Context, p ImportParams) (Certificate, error) {
	signer, leaf, err := parseImport(p)
	if err != nil {
		return Certificate{}, err
	}
	now := c.opts.Now()
	if now.After(leaf.NotAfter) {
		return Certificate{}, fmt.Errorf("%w: it was valid until %s", ErrCertificateExpired, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return Certificate{}, fmt.Errorf("%w: it is valid from %s", ErrCertificateNotYetValid, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return Certificate{}, fmt.Errorf("%w: %s", ErrInvalidCertificate, err)
	}
	defer clear(keyDER)
	sum := sha256.Sum256(leaf.Raw)
	cert := Certificate{
		ID:         "cert_" + randomID(),
		Label:      strings.TrimSpace(p.Label),
		Subject:    leaf.Subject.String(),
		Issuer:     leaf.Issuer.String(),
		Serial:     strings.ToUpper(leaf.SerialNumber.Text(16)),
		Thumbprint: hex.EncodeToString(sum[:]),
		TIN:        strings.TrimSpace(p.TIN),
		KeyType:    keyType(leaf.PublicKey),
		NotBefore:  leaf.NotBefore.UTC(),
		NotAfter:   leaf.NotAfter.UTC(),
		CreatedAt:  now.UTC().Truncate(time.Millisecond),
	}
	if cert.Label == "" {
		cert.Label = leaf.Subject.CommonName
	}
	if cert.TIN == "" {
		cert.TIN = tinOf(leaf)
	}
	cert.CertificatePEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
	cert.Status = c.status(cert, now)
	sealed := c.opts.Master.Seal(keyDER, sealAAD(cert.ID))
	err = c.db.InTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM certificates WHERE thumbprint = ?", cert.Thumbprint).Scan(&n); err != nil {
			return fmt.Errorf("check certificate: %w", err)
		}
		if n > 0 {
			return ErrCertificateExists
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO certificates
			(id, label, subject, issuer, serial, thumbprint, tin, key_type, not_before, not_after, cert_der, key_sealed, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			cert.ID, cert.Label, cert.Subject, cert.Issuer, cert.Serial, cert.Thumbprint, cert.TIN, cert.KeyType,
			store.Millis(cert.NotBefore), store.Millis(cert.NotAfter), leaf.Raw, sealed, store.Millis(cert.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert certificate: %w", err)
		}
		return nil
	})
	if err != nil {
		return Certificate{}, err
	}
	return cert, nil
}

// sealAAD binds a sealed key to its row: copied to another row, it
// does not open.
func sealAAD(id string) []byte { return []byte("fiscal certificate key " + id) }

const certColumns = `id, label, subject, issuer, serial, thumbprint, tin, key_type, not_before, not_after,
	created_at, deactivated_at, cert_der`

// certColumnsNoDER are certColumns with NULL for the DER: scan then
// takes the PEM from the cache, or leaves it empty.
const certColumnsNoDER = `id, label, subject, issuer, serial, thumbprint, tin, key_type, not_before, not_after,
	created_at, deactivated_at, NULL`

// List returns every certificate, newest first, deactivated ones included.
func (c *Certificates) List(ctx context.Context) ([]Certificate, error) {
	rows, err := c.db.Read.QueryContext(ctx, "SELECT "+certColumns+" FROM certificates WHERE id != '"+NoCertificate+"' ORDER BY created_at DESC, id")
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	defer rows.Close()
	certs := []Certificate{}
	now := c.opts.Now()
	for rows.Next() {
		cert, err := c.scan(rows, now)
		if err != nil {
			return nil, fmt.Errorf("list certificates: %w", err)
		}
		certs = append(certs, cert)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	return certs, nil
}

// Get returns one certificate. Returns ErrCertificateNotFound if none.
func (c *Certificates) Get(ctx context.Context, id string) (Certificate, error) {
	cert, err := c.scan(c.db.Read.QueryRowContext(ctx, "SELECT "+certColumns+" FROM certificates WHERE id = ? AND id != '"+NoCertificate+"'", id), c.opts.Now())
	if errors.Is(err, sql.ErrNoRows) {
		return Certificate{}, ErrCertificateNotFound
	}
	if err != nil {
		return Certificate{}, fmt.Errorf("get certificate %s: %w", id, err)
	}
	return cert, nil
}

// Deactivate stops a certificate from signing, from the very next
// invoice on. Invoices it signed stay as they are. Returns
// ErrCertificateNotFound or ErrAlreadyDeactivated.
func (c *Certificates) Deactivate(ctx context.Context, id string) (Certificate, error) {
	now := c.opts.Now()
	var cert Certificate
	err := c.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE certificates SET deactivated_at = ? WHERE id = ? AND deactivated_at IS NULL",
			store.Millis(now), id)
		if err != nil {
			return fmt.Errorf("deactivate certificate %s: %w", id, err)
		}
		n, _ := res.RowsAffected()
		cert, err = c.scan(tx.QueryRowContext(ctx, "SELECT "+certColumns+" FROM certificates WHERE id = ? AND id != '"+NoCertificate+"'", id), now)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrCertificateNotFound
		}
		if err != nil {
			return fmt.Errorf("deactivate certificate %s: %w", id, err)
		}
		if n == 0 {
			return ErrAlreadyDeactivated
		}
		return nil
	})
	if err == nil {
		c.mu.Lock()
		delete(c.signers, id)
		c.mu.Unlock()
	}
	return cert, err
}

// SignerTx returns the certificate id and its signer, inside the
// caller's transaction, so the check and the signature it allows see the
// same state: a certificate deactivated before the transaction began
// cannot sign in it. Returns ErrCertificateNotFound,
// ErrCertificateInactive, ErrCertificateExpired or ErrCertificateNotYetValid.
func (c *Certificates) SignerTx(ctx context.Context, tx *sql.Tx, id string) (Certificate, crypto.Signer, error) {
	now := c.opts.Now()
	// The sealed key is read only when its signer is not cached: every
	// invoice comes here twice.
	cert, err := c.scan(tx.QueryRowContext(ctx, "SELECT "+certColumnsNoDER+" FROM certificates WHERE id = ? AND id != '"+NoCertificate+"'", id), now)
	if errors.Is(err, sql.ErrNoRows) {
		return Certificate{}, nil, ErrCertificateNotFound
	}
	if err != nil {
		return Certificate{}, nil, fmt.Errorf("read certificate %s: %w", id, err)
	}
	if cert.CertificatePEM == "" {
		var der []byte
		if err := tx.QueryRowContext(ctx, "SELECT cert_der FROM certificates WHERE id = ?", id).Scan(&der); err != nil {
			return Certificate{}, nil, fmt.Errorf("read certificate %s: %w", id, err)
		}
		cert.CertificatePEM = c.pemOf(cert.Thumbprint, der)
	}
	switch cert.Status {
	case CertDeactivated:
		return Certificate{}, nil, ErrCertificateInactive
	case CertExpired:
		return Certificate{}, nil, fmt.Errorf("%w: it was valid until %s", ErrCertificateExpired, cert.NotAfter.Format(time.RFC3339))
	case CertNotYetValid:
		return Certificate{}, nil, fmt.Errorf("%w: it is valid from %s", ErrCertificateNotYetValid, cert.NotBefore.Format(time.RFC3339))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.signers[id]; ok {
		return cert, s, nil
	}
	var sealed []byte
	if err := tx.QueryRowContext(ctx, "SELECT key_sealed FROM certificates WHERE id = ?", id).Scan(&sealed); err != nil {
		return Certificate{}, nil, fmt.Errorf("read key of certificate %s: %w", id, err)
	}
	der, err := c.opts.Master.Open(sealed, sealAAD(id))
	if err != nil {
		return Certificate{}, nil, fmt.Errorf("unseal key of certificate %s: %w", id, err)
	}
	defer clear(der)
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return Certificate{}, nil, fmt.Errorf("parse key of certificate %s: %w", id, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return Certificate{}, nil, fmt.Errorf("key of certificate %s: %T is not a signer", id, k)
	}
	c.signers[id] = s
	return cert, s, nil
}

// status computes a certificate's state at now.
func (c *Certificates) status(cert Certificate, now time.Time) string {
	switch {
	case cert.DeactivatedAt != nil:
		return CertDeactivated
	case now.After(cert.NotAfter):
		return CertExpired
	case now.Before(cert.NotBefore):
		return CertNotYetValid
	default:
		return CertActive
	}
}

type scanner interface{ Scan(dest ...any) error }

func (c *Certificates) scan(s scanner, now time.Time, extra ...any) (Certificate, error) {
	var (
		cert                      Certificate
		notBefore, notAfter, made int64
		deactivated               sql.NullInt64
		der                       []byte
	)
	dest := append([]any{&cert.ID, &cert.Label, &cert.Subject, &cert.Issuer, &cert.Serial, &cert.Thumbprint,
		&cert.TIN, &cert.KeyType, &notBefore, &notAfter, &made, &deactivated, &der}, extra...)
	if err := s.Scan(dest...); err != nil {
		return Certificate{}, err
	}
	cert.NotBefore, cert.NotAfter, cert.CreatedAt = store.FromMillis(notBefore), store.FromMillis(notAfter), store.FromMillis(made)
	if deactivated.Valid {
		t := store.FromMillis(deactivated.Int64)
		cert.DeactivatedAt = &t
	}
	cert.CertificatePEM = c.pemOf(cert.Thumbprint, der)
	cert.Status = c.status(cert, now)
	return cert, nil
}

// pemOf returns the PEM of the certificate with thumbprint, encoding
// der (when given) once; "" when der is nil and the PEM is not cached.
func (c *Certificates) pemOf(thumbprint string, der []byte) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pems[thumbprint]; ok {
		return p
	}
	if der == nil {
		return ""
	}
	p := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	c.pems[thumbprint] = p
	return p
}

// invoiceID returns 12 bytes, the first 6 the time in milliseconds and
// the rest random, in the base64url alphabet reordered to sort as ASCII
// does: so ids sort by creation time, and the unique indexes on invoice
// ids (invoices, print_jobs) grow at their end. With random ids every
// invoice touched two more index pages at random, and each of those is
// one more page in the commit's WAL write (measured: 16 pages written
// for one invoice, 2 of them these indexes). 48 random bits per
// millisecond keep ids unguessable enough for what needs no secret: an
// invoice is read only with an API key.
func invoiceID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("fiscal: crypto/rand failed: " + err.Error())
	}
	return sortableBase64.EncodeToString(b[:])
}

// sortableBase64 is base64url's alphabet in ASCII order.
var sortableBase64 = base64.NewEncoding("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz").WithPadding(base64.NoPadding)

// randomID returns 12 random bytes as unpadded base64url.
func randomID() string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic("fiscal: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
