package fiscal_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/store"
)

func TestImportPKCS12OpenSSL3(t *testing.T) {
	db := openStore(t)
	mk := masterKey(t)
	c := newCerts(t, db, mk, (&clock{testNow}).Now)
	cert := importP12(t, c)

	blk, _ := pem.Decode(readFile(t, "openssl3-aes.crt.pem"))
	sum := sha256.Sum256(blk.Bytes)
	x, _ := x509.ParseCertificate(blk.Bytes)
	if got, want := cert.Thumbprint, hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("Thumbprint=%v, want %v", got, want)
	}
	if got, want := cert.Serial, strings.ToUpper(x.SerialNumber.Text(16)); got != want {
		t.Fatalf("Serial=%v, want %v", got, want)
	}
	if got, want := cert.TIN, "12345678"; got != want {
		t.Fatalf("TIN=%v, want %v", got, want)
	}
	if got, want := cert.KeyType, "RSA-2048"; got != want {
		t.Fatalf("KeyType=%v, want %v", got, want)
	}
	if got, want := cert.Status, fiscal.CertActive; got != want {
		t.Fatalf("Status=%v, want %v", got, want)
	}
	if got, want := cert.Label, "posgate test taxpayer"; got != want {
		t.Fatalf("Label=%v, want %v", got, want)
	}
	if !strings.Contains(cert.Subject, "CN=posgate test taxpayer") {
		t.Fatalf("Subject=%q, want the CN", cert.Subject)
	}
	got, err := c.Get(context.Background(), cert.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Thumbprint != cert.Thumbprint || !got.NotAfter.Equal(cert.NotAfter) || got.CertificatePEM != cert.CertificatePEM {
		t.Fatalf("Get=%+v, want %+v", got, cert)
	}
	list, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != cert.ID {
		t.Fatalf("List=%+v, want the one certificate", list)
	}
	// The unsealed signer is the certificate's key, and the certificate
	// SignerTx returns carries its PEM: from a fresh Certificates (nothing
	// cached: the tax service's client parses it), then from the cache.
	for _, certs := range []*fiscal.Certificates{newCerts(t, db, mk, func() time.Time { return testNow }), c, c} {
		err = db.InTx(context.Background(), func(tx *sql.Tx) error {
			got, s, err := certs.SignerTx(context.Background(), tx, cert.ID)
			if err != nil {
				return err
			}
			// Errors, not t.Fatal: this runs on the store's writer goroutine.
			if !s.Public().(*rsa.PublicKey).Equal(&exampleKey(t).PublicKey) {
				return errors.New("signer's public key differs from the certificate's")
			}
			if got.CertificatePEM != cert.CertificatePEM || got.Thumbprint != cert.Thumbprint {
				return fmt.Errorf("SignerTx's certificate PEM %q, want %q", got.CertificatePEM, cert.CertificatePEM)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestImportPKCS12MadeNow makes a .p12 with the openssl on this machine,
// if there is one, so a newer OpenSSL's defaults are covered too.
func TestImportPKCS12MadeNow(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl binary")
	}
	dir := t.TempDir()
	keyFile, crtFile, p12 := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem"), filepath.Join(dir, "x.p12")
	key := exampleKey(t)
	os.WriteFile(keyFile, []byte(keyPEM(t, key)), 0o600)
	os.WriteFile(crtFile, []byte(selfSigned(t, key, "made now", "87654321", testNow.Add(-time.Hour), testNow.Add(time.Hour))), 0o600)
	out, err := exec.Command(bin, "pkcs12", "-export", "-inkey", keyFile, "-in", crtFile, "-passout", "pass:s3cret", "-out", p12).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v: %s", err, out)
	}
	c := newCerts(t, openStore(t), masterKey(t), (&clock{testNow}).Now)
	cert, err := c.Import(context.Background(), fiscal.ImportParams{PKCS12: readAbs(t, p12), Password: "s3cret"})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if got, want := cert.TIN, "87654321"; got != want {
		t.Fatalf("TIN=%v, want %v", got, want)
	}
}

func readAbs(t testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImportErr(t *testing.T) {
	key := exampleKey(t)
	other := testKeyB(t)
	for _, tc := range []struct {
		name    string
		p       fiscal.ImportParams
		want    error
		message string
	}{
		{"ErrWrongPassword", fiscal.ImportParams{PKCS12: readFile(t, "openssl3-aes.p12"), Password: "nope"},
			fiscal.ErrWrongPassword, "password is incorrect"},
		{"ErrExpired", fiscal.ImportParams{PKCS12: readFile(t, "expired.p12"), Password: "posgate-test"},
			fiscal.ErrCertificateExpired, "valid until 2021-01-01T00:00:00Z"},
		{"ErrNotYetValid", fiscal.ImportParams{
			CertificatePEM: selfSigned(t, key, "future", "1", testNow.Add(time.Hour), testNow.Add(48*time.Hour)), PrivateKeyPEM: keyPEM(t, key)},
			fiscal.ErrCertificateNotYetValid, "valid from"},
		{"ErrKeyMismatch", fiscal.ImportParams{
			CertificatePEM: selfSigned(t, key, "a", "1", testNow.Add(-time.Hour), testNow.Add(time.Hour)), PrivateKeyPEM: keyPEM(t, other)},
			fiscal.ErrKeyMismatch, "does not belong"},
		{"ErrGarbage", fiscal.ImportParams{PKCS12: []byte("not a p12"), Password: "x"},
			fiscal.ErrInvalidCertificate, "PKCS#12"},
		{"ErrNothing", fiscal.ImportParams{}, fiscal.ErrInvalidCertificate, "give a PKCS#12"},
		{"ErrEncryptedPEM", fiscal.ImportParams{CertificatePEM: selfSigned(t, key, "a", "1", testNow.Add(-time.Hour), testNow.Add(time.Hour)),
			PrivateKeyPEM: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"},
			fiscal.ErrInvalidCertificate, "encrypted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCerts(t, openStore(t), masterKey(t), (&clock{testNow}).Now)
			_, err := c.Import(context.Background(), tc.p)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("err=%v, want %v mentioning %q", err, tc.want, tc.message)
			}
		})
	}
	t.Run("ErrExists", func(t *testing.T) {
		c := newCerts(t, openStore(t), masterKey(t), (&clock{testNow}).Now)
		importP12(t, c)
		_, err := c.Import(context.Background(), fiscal.ImportParams{PKCS12: readFile(t, "openssl3-aes.p12"), Password: "posgate-test"})
		if !errors.Is(err, fiscal.ErrCertificateExists) {
			t.Fatalf("err=%v, want ErrCertificateExists", err)
		}
	})
}

// TestNoPrivateKeyBytesInDatabase imports a key, signs with it, closes
// the store and searches the database file and its WAL for the key in
// every encoding and for its secret numbers.
func TestNoPrivateKeyBytesInDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posgate.db")
	db, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := newCerts(t, db, masterKey(t), (&clock{testNow}).Now)
	cert := importP12(t, c)
	key := exampleKey(t)
	_, err = c.Import(context.Background(), fiscal.ImportParams{
		CertificatePEM: selfSigned(t, key, "pem", "1", testNow.Add(-time.Hour), testNow.Add(time.Hour)), PrivateKeyPEM: keyPEM(t, key)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		_, _, err := c.SignerTx(context.Background(), tx, cert.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var files [][]byte
	for _, suffix := range []string{"", "-wal"} {
		if b, err := os.ReadFile(path + suffix); err == nil {
			files = append(files, b)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, b)

	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	pkcs1 := x509.MarshalPKCS1PrivateKey(key)
	// The DER encodings start with the public modulus, which the
	// certificate carries too; their last 512 bytes are all secret.
	secrets := map[string][]byte{
		"PKCS#8 DER": pkcs8[len(pkcs8)-512:],
		"PKCS#1 DER": pkcs1[len(pkcs1)-512:],
		"PEM":        []byte(strings.Split(keyPEM(t, key), "\n")[1]),
		"PKCS#12":    readFile(t, "openssl3-aes.p12")[:64],
		"D":          key.D.Bytes(),
		"P":          key.Primes[0].Bytes(),
		"Q":          key.Primes[1].Bytes(),
		"Dp":         key.Precomputed.Dp.Bytes(),
		"Qinv":       key.Precomputed.Qinv.Bytes(),
		"password":   []byte("posgate-test"),
	}
	for _, f := range files {
		for name, s := range secrets {
			// 16 bytes of a secret number anywhere would be a leak.
			for i := 0; i+16 <= len(s); i += 16 {
				if bytes.Contains(f, s[i:i+16]) {
					t.Fatalf("database file contains %s bytes at offset %d of the secret", name, i)
				}
			}
		}
	}
	if !bytes.Contains(files[len(files)-1], []byte(cert.Thumbprint)) {
		t.Fatal("sanity: the certificate's thumbprint is not in the file; the search reads the wrong file")
	}
}

func TestDeactivate(t *testing.T) {
	db := openStore(t)
	c := newCerts(t, db, masterKey(t), (&clock{testNow}).Now)
	cert := importP12(t, c)
	ctx := context.Background()
	got, err := c.Deactivate(ctx, cert.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != fiscal.CertDeactivated || got.DeactivatedAt == nil {
		t.Fatalf("Deactivate=%+v, want deactivated", got)
	}
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		_, _, err := c.SignerTx(ctx, tx, cert.ID)
		return err
	})
	if !errors.Is(err, fiscal.ErrCertificateInactive) {
		t.Fatalf("SignerTx after deactivate: %v, want ErrCertificateInactive", err)
	}
	if _, err := c.Deactivate(ctx, cert.ID); !errors.Is(err, fiscal.ErrAlreadyDeactivated) {
		t.Fatalf("second Deactivate: %v, want ErrAlreadyDeactivated", err)
	}
	if _, err := c.Deactivate(ctx, "cert_nope"); !errors.Is(err, fiscal.ErrCertificateNotFound) {
		t.Fatalf("Deactivate(unknown): %v, want ErrCertificateNotFound", err)
	}
	if _, err := c.Get(ctx, "cert_nope"); !errors.Is(err, fiscal.ErrCertificateNotFound) {
		t.Fatalf("Get(unknown): %v, want ErrCertificateNotFound", err)
	}
}

func TestHealth(t *testing.T) {
	db := openStore(t)
	clk := &clock{testNow}
	c := newCerts(t, db, masterKey(t), clk.Now)
	cert := importP12(t, c)
	health := func() map[string]any { return c.Health(context.Background())["certificates"].(map[string]any) }
	if got, want := health()["status"], "ok"; got != want {
		t.Fatalf("status=%v, want %v", got, want)
	}
	clk.t = cert.NotAfter.Add(-24 * time.Hour)
	if h := health(); h["status"] != "warning" || h["active"] != 1 {
		t.Fatalf("a day before expiry: %v, want warning with 1 active", h)
	}
	clk.t = cert.NotAfter.Add(time.Second)
	if h := health(); h["status"] != "error" || h["active"] != 0 {
		t.Fatalf("after expiry: %v, want error with 0 active", h)
	}
	err := db.InTx(context.Background(), func(tx *sql.Tx) error {
		_, _, err := c.SignerTx(context.Background(), tx, cert.ID)
		return err
	})
	if !errors.Is(err, fiscal.ErrCertificateExpired) {
		t.Fatalf("SignerTx after expiry: %v, want ErrCertificateExpired", err)
	}
}

// TestRunLogsExpiry: Run logs an expired certificate as an error and one
// expiring soon as a warning, then returns nil when its context ends.
func TestRunLogsExpiry(t *testing.T) {
	db := openStore(t)
	clk := &clock{testNow}
	logs := &lockedBuffer{}
	mk := masterKey(t)
	c := fiscal.NewCertificates(db, fiscal.CertificatesOptions{Master: mk, Now: clk.Now, Log: zerolog.New(logs)})
	cert := importP12(t, c)
	key := testKeyB(t)
	if _, err := c.Import(context.Background(), fiscal.ImportParams{PrivateKeyPEM: keyPEM(t, key),
		CertificatePEM: selfSigned(t, key, "short", "1", testNow.Add(-time.Hour), cert.NotAfter.Add(10*24*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	clk.t = cert.NotAfter.Add(time.Hour) // the first expired, the second expires in 10 days
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !(strings.Contains(logs.String(), "expires soon") && strings.Contains(logs.String(), "certificate expired")) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run=%v, want nil", err)
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"error"`) || !strings.Contains(out, "certificate expired") || !strings.Contains(out, cert.ID) {
		t.Fatalf("log %s: want the expired certificate as an error", out)
	}
	if !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, "certificate expires soon") {
		t.Fatalf("log %s: want the expiring certificate as a warning", out)
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger and the test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
