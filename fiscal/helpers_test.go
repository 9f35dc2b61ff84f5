package fiscal_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/store/storetest"
)

// openStore and masterKey are storetest's, under the names these tests use.
var (
	openStore = storetest.Open
	masterKey = storetest.MasterKey
)

// exampleKey is the Montenegrin specification's public example key.
func exampleKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	raw, err := os.ReadFile("testdata/me-spec-v5-example-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	key, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// selfSigned makes a PEM certificate for key, valid from nb to na, with
// the given TIN as organizationIdentifier-less serialNumber.
func selfSigned(t testing.TB, key *rsa.PrivateKey, cn, tin string, nb, na time.Time) string {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, SerialNumber: tin},
		NotBefore:    nb, NotAfter: na,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func keyPEM(t testing.TB, key *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

var testNow = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

func newCerts(t testing.TB, db *store.DB, mk *masterkey.Key, now func() time.Time) *fiscal.Certificates {
	t.Helper()
	return fiscal.NewCertificates(db, fiscal.CertificatesOptions{Master: mk, Now: now})
}

func importP12(t testing.TB, c *fiscal.Certificates) fiscal.Certificate {
	t.Helper()
	cert, err := c.Import(context.Background(), fiscal.ImportParams{PKCS12: readFile(t, "openssl3-aes.p12"), Password: "posgate-test"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return cert
}

// testKeyB is a second RSA key, made once per test binary: 2048-bit key
// generation is slow under -race.
func testKeyB(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	keyBOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keyB = k
	})
	return keyB
}

var (
	keyBOnce sync.Once
	keyB     *rsa.PrivateKey
)
