package nexo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"
)

// chain is a generated root → intermediate → leaf, as a real terminal
// presents leaf + intermediate chained to Adyen's fleet root.
type chain struct {
	rootPEM []byte
	leaf    tls.Certificate
}

func newChain(poiID, env string, now time.Time) (*chain, error) {
	mk := func(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) (*x509.Certificate, []byte, error) {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			return nil, nil, err
		}
		c, err := x509.ParseCertificate(der)
		return c, der, err
	}
	key := func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	serial := func() *big.Int { n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64)); return n }
	rk, err := key()
	if err != nil {
		return nil, err
	}
	rootT := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "posgate Simulated Terminal Fleet Root", Organization: []string{"posgate simulator"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	root, rootDER, err := mk(rootT, rootT, &rk.PublicKey, rk)
	if err != nil {
		return nil, fmt.Errorf("simulator root: %w", err)
	}
	ik, err := key()
	if err != nil {
		return nil, err
	}
	interT := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "posgate Simulated Terminal Fleet Intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign}
	inter, interDER, err := mk(interT, root, &ik.PublicKey, rk)
	if err != nil {
		return nil, fmt.Errorf("simulator intermediate: %w", err)
	}
	lk, err := key()
	if err != nil {
		return nil, err
	}
	name := poiID + "." + env + ".terminal.adyen.com"
	leafT := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{name, "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	_, leafDER, err := mk(leafT, inter, &lk.PublicKey, ik)
	if err != nil {
		return nil, fmt.Errorf("simulator leaf: %w", err)
	}
	return &chain{
		rootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}),
		leaf:    tls.Certificate{Certificate: [][]byte{leafDER, interDER}, PrivateKey: lk},
	}, nil
}
