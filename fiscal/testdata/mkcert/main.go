// Command mkcert writes a self-signed test certificate for the key in
// ../me-spec-v5-example-key.pem; make-p12.sh wraps it with openssl.
// Usage: go run ./mkcert NOT_BEFORE NOT_AFTER OUT.pem (dates as 2006-01-02).
package main

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"log"
	"math/big"
	"os"
	"time"
)

func main() {
	raw, err := os.ReadFile("me-spec-v5-example-key.pem")
	if err != nil {
		log.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	key, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		log.Fatal(err)
	}
	nb, err := time.Parse("2006-01-02", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	na, err := time.Parse("2006-01-02", os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName: "posgate test taxpayer", Organization: []string{"posgate test"}, Country: []string{"ME"},
			SerialNumber: "12345678",
			ExtraNames:   []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "VATME-12345678"}},
		},
		NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(os.Args[3], pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		log.Fatal(err)
	}
}
