package iic_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/iic"
)

// exampleKey is the public example key of the Montenegrin specification
// v5 (see ../testdata/README.md).
func exampleKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	raw, err := os.ReadFile("../testdata/me-spec-v5-example-key.pem")
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

// vectorDoc is the specification's example invoice.
func vectorDoc() fiscal.Document {
	return fiscal.Document{
		TIN:          "12345678",
		IssuedAt:     time.Date(2019, 6, 12, 15, 5, 43, 0, time.UTC), // 17:05:43+02:00
		Ordinal:      9952,
		BusinessUnit: "bb123bb123",
		Device:       "cc123cc123",
		Software:     "ss123ss123",
		Total:        9901,
	}
}

func newScheme(t testing.TB, opts iic.Options) *iic.Scheme {
	t.Helper()
	s, err := iic.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignPublicVector(t *testing.T) {
	s := newScheme(t, iic.Options{})
	sig, err := s.Sign(context.Background(), exampleKey(t), vectorDoc())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sig.SignedString, "12345678|2019-06-12T17:05:43+02:00|9952|bb123bb123|cc123cc123|ss123ss123|99.01"; got != want {
		t.Fatalf("SignedString=%q, want %q", got, want)
	}
	if got, want := sig.Code, "E4033D471FEEA47A3C664B15C669C709"; got != want {
		t.Fatalf("Code=%v, want %v", got, want)
	}
	if !strings.HasPrefix(sig.Value, "A72977773A579523665C3D4F8DEFF3F301CA726A7960EFF5A6863E4CB6009A752C52652C615049A0") {
		t.Fatalf("Value=%.40s…, want the published prefix A72977773A5795…", sig.Value)
	}
	if got, want := len(sig.Value), 512; got != want {
		t.Fatalf("len(Value)=%d, want %d (RSA-2048 in hex)", got, want)
	}
	if got, want := sig.Scheme, "ME-IIC"; got != want {
		t.Fatalf("Scheme=%v, want %v", got, want)
	}
	if err := s.Verify(exampleKey(t).Public(), sig); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestSignedStringFormats(t *testing.T) {
	s := newScheme(t, iic.Options{})
	for _, tc := range []struct {
		name  string
		total fiscal.Money
		at    time.Time
		want  string
	}{
		{"OK", 9901, time.Date(2019, 6, 12, 15, 5, 43, 0, time.UTC), "2019-06-12T17:05:43+02:00|9952|bb123bb123|cc123cc123|ss123ss123|99.01"},
		{"Thousand", 100000, time.Date(2019, 6, 12, 15, 5, 43, 0, time.UTC), "|1000.00"},
		{"NoSeparators", 123456789, time.Date(2019, 6, 12, 15, 5, 43, 0, time.UTC), "|1234567.89"},
		{"Cents", 5, time.Date(2019, 6, 12, 15, 5, 43, 0, time.UTC), "|0.05"},
		{"Refund", -250050, time.Date(2019, 6, 12, 15, 5, 43, 0, time.UTC), "|-2500.50"},
		{"WinterOffset", 100, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "12345678|2024-01-02T04:04:05+01:00|"},
		{"SubSecondsDropped", 100, time.Date(2024, 1, 2, 3, 4, 5, 999e6, time.UTC), "T04:04:05+01:00|"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := vectorDoc()
			d.Total, d.IssuedAt = tc.total, tc.at
			if got := s.SignedString(d); !strings.Contains(got, tc.want) || strings.Contains(got, ",") {
				t.Fatalf("SignedString=%q, want it to contain %q and no comma", got, tc.want)
			}
		})
	}
}

func TestVerifyURL(t *testing.T) {
	d := vectorDoc()
	for _, tc := range []struct {
		name string
		opts iic.Options
		want string
	}{
		{"MontenegroTest", iic.Options{},
			"https://efitest.tax.gov.me/ic/#/verify?tin=12345678&iic=E4033D471FEEA47A3C664B15C669C709&crtd=2019-06-12T17%3A05%3A43%2B02%3A00&ord=9952&bu=bb123bb123&cr=cc123cc123&sw=ss123ss123&prc=99.01"},
		{"MontenegroProduction", iic.Options{Country: "me", Environment: "production"},
			"https://mapr.tax.gov.me/ic/#/verify?tin=12345678&iic=E4033D471FEEA47A3C664B15C669C709&crtd=2019-06-12T17%3A05%3A43%2B02%3A00&ord=9952&bu=bb123bb123&cr=cc123cc123&sw=ss123ss123&prc=99.01"},
		{"AlbaniaProduction", iic.Options{Country: "al", Environment: "production"},
			"https://efiskalizimi-app.tatime.gov.al/invoice-check/#/verify?iic=E4033D471FEEA47A3C664B15C669C709&tin=12345678&crtd=2019-06-12T17%3A05%3A43%2B02%3A00&ord=9952&bu=bb123bb123&cr=cc123cc123&sw=ss123ss123&prc=99.01"},
		{"AlbaniaTest", iic.Options{Country: "al"},
			"https://efiskalizimi-app-test.tatime.gov.al/invoice-check/#/verify?iic=E4033D471FEEA47A3C664B15C669C709&tin=12345678&crtd=2019-06-12T17%3A05%3A43%2B02%3A00&ord=9952&bu=bb123bb123&cr=cc123cc123&sw=ss123ss123&prc=99.01"},
		{"Override", iic.Options{VerifyURL: "https://portal.example/verify"},
			"https://portal.example/verify?tin=12345678&iic=E4033D471FEEA47A3C664B15C669C709&crtd=2019-06-12T17%3A05%3A43%2B02%3A00&ord=9952&bu=bb123bb123&cr=cc123cc123&sw=ss123ss123&prc=99.01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScheme(t, tc.opts)
			sig, err := s.Sign(context.Background(), exampleKey(t), d)
			if err != nil {
				t.Fatal(err)
			}
			if got := sig.VerifyURL; got != tc.want {
				t.Fatalf("VerifyURL=\n%s, want\n%s", got, tc.want)
			}
			// The portal reads the fragment's query: crtd must decode back
			// to the offset, not to a space.
			_, frag, _ := strings.Cut(sig.VerifyURL, "?")
			q, err := url.ParseQuery(frag)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := q.Get("crtd"), "2019-06-12T17:05:43+02:00"; got != want {
				t.Fatalf("crtd=%q, want %q", got, want)
			}
		})
	}
}

func TestNewErr(t *testing.T) {
	if _, err := iic.New(iic.Options{Country: "hr"}); err == nil || !strings.Contains(err.Error(), `"hr"`) {
		t.Fatalf("New(country hr) err=%v, want one naming the value", err)
	}
	if _, err := iic.New(iic.Options{Environment: "prod"}); err == nil || !strings.Contains(err.Error(), `"prod"`) {
		t.Fatalf("New(environment prod) err=%v, want one naming the value", err)
	}
}

// notRSA is a signer with a non-RSA public key.
type notRSA struct{ crypto.Signer }

func (notRSA) Public() crypto.PublicKey { return "not a key" }

func TestSignErr(t *testing.T) {
	s := newScheme(t, iic.Options{})
	t.Run("ErrNotRSA", func(t *testing.T) {
		if _, err := s.Sign(context.Background(), notRSA{}, vectorDoc()); err != iic.ErrNotRSA {
			t.Fatalf("err=%v, want ErrNotRSA", err)
		}
	})
	t.Run("ErrMissingFields", func(t *testing.T) {
		d := vectorDoc()
		d.TIN = ""
		if _, err := s.Sign(context.Background(), exampleKey(t), d); err != iic.ErrMissingFields {
			t.Fatalf("err=%v, want ErrMissingFields", err)
		}
	})
	t.Run("VerifyTampered", func(t *testing.T) {
		sig, err := s.Sign(context.Background(), exampleKey(t), vectorDoc())
		if err != nil {
			t.Fatal(err)
		}
		sig.SignedString = strings.Replace(sig.SignedString, "99.01", "9.01", 1)
		if err := s.Verify(exampleKey(t).Public(), sig); err != iic.ErrBadSignature {
			t.Fatalf("Verify(tampered)=%v, want ErrBadSignature", err)
		}
	})
}

// TestOpenSSLAgrees signs the vector with the openssl binary, when there
// is one, and compares: a second implementation catches a Go-side
// canonicalisation bug that a vector made by the same code could not.
func TestOpenSSLAgrees(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl binary")
	}
	s := newScheme(t, iic.Options{})
	d := vectorDoc()
	d.Total = 123456789 // ≥ 1000.00: no thousands separator
	msg := filepath.Join(t.TempDir(), "msg")
	if err := os.WriteFile(msg, []byte(s.SignedString(d)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "dgst", "-sha256", "-sign", "../testdata/me-spec-v5-example-key.pem", msg).Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	sig, err := s.Sign(context.Background(), exampleKey(t), d)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sig.Value, strings.ToUpper(hex.EncodeToString(out)); got != want {
		t.Fatalf("Go signature %.16s…, openssl %.16s…", got, want)
	}
	if got, want := sig.Code, iic.Code(out); got != want {
		t.Fatalf("Code=%v, want %v", got, want)
	}
}
