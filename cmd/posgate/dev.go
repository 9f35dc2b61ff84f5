package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/posgate/posgate/apikey"
	"github.com/posgate/posgate/fiscal"
)

// bootstrapDev gives an empty store what `make run` needs to be tried at
// once, in --dev only: an admin key, printed once with curl lines, and —
// when fiscal is configured and the country profile signs — a self-signed
// development certificate for the configured TIN bound to that key, so invoices can be made and
// printed on the simulator. The certificate says in its name that it is
// not for production, and a real one replaces it with `posgate certs
// import --bind`.
func bootstrapDev(ctx context.Context, cfg Config, keys *apikey.Keys, certs *fiscal.Certificates, stdout io.Writer) error {
	list, err := keys.List(ctx)
	if err != nil {
		return err
	}
	if len(list) > 0 {
		return nil
	}
	var certID string
	// A profile that signs nothing (bg, none) needs no certificate.
	cp, err := newProfile(cfg.Fiscal, profileDeps{})
	if err != nil {
		return err
	}
	if cfg.Fiscal.Enabled() && cp.Requirements().Certificate {
		c, err := devCertificate(ctx, certs, cfg.Fiscal.TIN)
		if err != nil {
			return fmt.Errorf("create dev certificate: %w", err)
		}
		certID = c.ID
	}
	created, err := keys.Create(ctx, apikey.NewParams{Label: "dev admin", Role: apikey.RoleAdmin, CertificateID: certID})
	if err != nil {
		return fmt.Errorf("create dev admin key: %w", err)
	}
	printCreatedKey(stdout, created, cfg.Listen)
	if cfg.Fiscal.Enabled() {
		fmt.Fprintf(stdout, "  Invoice: curl -s -X POST -H 'X-Api-Key: %s:%s' -H \"Idempotency-Key: $(date +%%s%%N)\" -H 'Content-Type: application/json' "+
			`-d '{"type":"sale","items":[{"name":"Espresso","quantity":2,"unit_price":150,"vat_rate":21}],"payments":[{"type":"cash","amount":300}]}' `+
			"http://%s/v1/invoices\n", created.ClientID, created.ClientSecret, cfg.Listen)
	}
	return nil
}

// devCertificate makes and imports a self-signed RSA certificate for tin.
func devCertificate(ctx context.Context, certs *fiscal.Certificates, tin string) (fiscal.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fiscal.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return fiscal.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "posgate development certificate (not for production)", SerialNumber: tin},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fiscal.Certificate{}, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fiscal.Certificate{}, err
	}
	return certs.Import(ctx, fiscal.ImportParams{
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		PrivateKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
		Label:          "dev",
		TIN:            tin,
	})
}
