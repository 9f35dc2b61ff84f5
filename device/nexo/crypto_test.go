package nexo

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// The KDF vector of research/nexo.md R4.2, identical in Go, Node, Python
// hashlib, openssl kdf and Java JCE.
func TestDeriveKeyVector(t *testing.T) {
	k, err := DeriveKey("mySecretPassphrase", "k", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"hmacKey", k.hmacKey[:], "1e3d4280fc1a4cdf1d90fc78913b4bea8aa0083d166e830e2da2e217a3aa38f4"},
		{"cipherKey", k.aesKey[:], "0e19b4301dabdd08db2bc64126b9ea412508096b222618ac3c62d104a46fbe75"},
		{"ivBase", k.ivBase[:], "4dbc2224a7dd5e519e6a1f1dc7d30a7c"},
	} {
		if got := hex.EncodeToString(c.got); got != c.want {
			t.Errorf("%s=%s, want %s", c.name, got, c.want)
		}
	}
}

func TestPassphraseASCII(t *testing.T) {
	for _, p := range []string{"", "pässwörd", "tab\there", "nul\x00"} {
		if _, err := DeriveKey(p, "k", 1); !errors.Is(err, ErrPassphrase) {
			t.Errorf("DeriveKey(%q) err=%v, want ErrPassphrase", p, err)
		}
	}
	if _, err := DeriveKey("P@ssw0rd 123~", "k", 1); err != nil {
		t.Fatal(err)
	}
}

// The deterministic encryption vector of research/nexo.md R4.3: the
// minimal sale request with nonce 00..0f under mySecretPassphrase; the
// Node library and openssl decrypt the same blob.
func TestSealVector(t *testing.T) {
	pt, err := os.ReadFile("testdata/sale-request.plain.json")
	if err != nil {
		t.Fatal(err)
	}
	k, err := DeriveKey("mySecretPassphrase", "Key1", 1)
	if err != nil {
		t.Fatal(err)
	}
	var nonce [16]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	if got, want := hex.EncodeToString(func() []byte { iv := k.iv(nonce); return iv[:] }()), "4dbd2027a3d8585696631516cbde0473"; got != want {
		t.Fatalf("iv=%s, want %s", got, want)
	}
	body, err := sealWith(k, WrapRequest, &Header{MessageClass: ClassService, MessageCategory: CategoryPayment, MessageType: TypeRequest}, pt, nonce)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]sealedBody
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	sb := env[WrapRequest]
	if got, want := sb.SecurityTrailer.Hmac, "081sJN4aVzL1gcutJXUbLLjFqivVNVKMly92P49GhwY="; got != want {
		t.Errorf("Hmac=%s, want %s", got, want)
	}
	if !strings.HasPrefix(sb.NexoBlob, "XOPM1qI87EQQJ/YN3+XU") || len(sb.NexoBlob) != 576 {
		t.Errorf("NexoBlob=%.24s… (%d chars), want XOPM1qI87EQQJ/YN3+XU… (576)", sb.NexoBlob, len(sb.NexoBlob))
	}
	if got, want := sb.SecurityTrailer.Nonce, "AAECAwQFBgcICQoLDA0ODw=="; got != want {
		t.Errorf("Nonce=%s, want %s", got, want)
	}
	_, back, err := Open(Single(k), body)
	if err != nil || !bytes.Equal(back, pt) {
		t.Fatalf("Open: %v, %q", err, back)
	}
}

// The four Adyen-published encrypted messages (testdata/README.md). The
// HMAC over the plaintext verifies only with the right derived key and a
// correct decryption, and the fields checked are what Adyen's tests
// expect of each.
func TestAdyenVectors(t *testing.T) {
	for _, c := range []struct {
		file, pass, keyID string
		want              []string // substrings of the plaintext
	}{
		{"payment-sync-encrypted-success.json", "p@ssw0rd123456", "CryptoKeyIdentifier12345",
			[]string{`"SaleToPOIResponse"`, `"PaymentResponse"`, `"Result":"Success"`}},
		{"encrypted-event-notification.json", "P@ssw0rd123456", "Key123456789crypt",
			[]string{`"POIID":"V400m-347374578"`, `VP57CW8P77C64Q75`, `"POIReconciliationID":"1000"`, `"AuthorizedAmount":1`, `posAuthAmountValue=100`}},
		{"java-payment-local-success.json", "p@ssw0rd123456", "CryptoKeyIdentifier12345",
			[]string{`"PaymentResponse"`, `"Result":"Success"`}},
		{"java-payment-local-additional-attributes.json", "p@ssw0rd123456", "CryptoKeyIdentifier12345",
			[]string{`"PaymentResponse"`, `"AdditionalResponse"`}},
	} {
		t.Run(c.file, func(t *testing.T) {
			body, err := os.ReadFile("testdata/" + c.file)
			if err != nil {
				t.Fatal(err)
			}
			k, err := DeriveKey(c.pass, c.keyID, 1)
			if err != nil {
				t.Fatal(err)
			}
			wrapper, pt, err := Open(Single(k), body)
			if err != nil {
				t.Fatal(err)
			}
			if wrapper != WrapResponse {
				t.Fatalf("wrapper %s", wrapper)
			}
			compact := new(bytes.Buffer)
			if err := json.Compact(compact, pt); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(compact.String(), w) {
					t.Errorf("plaintext lacks %s", w)
				}
			}
			// The lenient decoder reads what the terminal sent.
			var m ResponseMessage
			if err := json.Unmarshal(pt, &m); err != nil || m.SaleToPOIResponse == nil || m.SaleToPOIResponse.PaymentResponse == nil {
				t.Fatalf("decode: %v", err)
			}
			pr := m.SaleToPOIResponse.PaymentResponse
			if pr.Response.Result != ResultSuccess || pr.POIData.POITransactionID.TransactionID == "" {
				t.Fatalf("payment response %+v", pr)
			}
			if _, err := pr.PaymentResult.AmountsResp.AuthorizedAmount.Minor(2); err != nil {
				t.Fatal(err)
			}

			// One wrong byte anywhere, or the wrong passphrase, gives the
			// one generic error.
			wrong, _ := DeriveKey(c.pass+"x", c.keyID, 1)
			if _, _, err := Open(Single(wrong), body); err != ErrCrypto {
				t.Fatalf("wrong key: %v", err)
			}
			if _, _, err := Open(Single(k), flipBlob(t, body)); err != ErrCrypto {
				t.Fatalf("flipped blob: %v", err)
			}
			other, _ := DeriveKey(c.pass, c.keyID+"x", 1)
			if _, _, err := Open(Single(other), body); err != ErrCrypto {
				t.Fatalf("unknown key id: %v", err)
			}
		})
	}
}

// flipBlob changes one base64 character in the middle of NexoBlob.
func flipBlob(t *testing.T, body []byte) []byte {
	t.Helper()
	i := bytes.Index(body, []byte(`"NexoBlob"`))
	j := bytes.IndexByte(body[i+11:], '"') + i + 11 + 40
	out := bytes.Clone(body)
	if out[j] == 'A' {
		out[j] = 'B'
	} else {
		out[j] = 'A'
	}
	return out
}

// TestPaddingOracle: every way a blob can be wrong (bad padding with a
// right MAC is impossible to build without the key, so the padding cases
// use the key) gives the same error value.
func TestPaddingOracle(t *testing.T) {
	k, _ := DeriveKey("mySecretPassphrase", "Key1", 1)
	var nonce [16]byte
	ct, mac := k.seal([]byte(`{"SaleToPOIResponse":{}}`), nonce)
	cases := map[string]func() ([]byte, []byte, []byte){
		"truncated":  func() ([]byte, []byte, []byte) { return ct[:len(ct)-1], nonce[:], mac },
		"lastblock":  func() ([]byte, []byte, []byte) { c := bytes.Clone(ct); c[len(c)-1] ^= 1; return c, nonce[:], mac },
		"mac":        func() ([]byte, []byte, []byte) { m := bytes.Clone(mac); m[0] ^= 1; return ct, nonce[:], m },
		"nonce":      func() ([]byte, []byte, []byte) { n := bytes.Clone(nonce[:]); n[3] ^= 1; return ct, n, mac },
		"shortnonce": func() ([]byte, []byte, []byte) { return ct, nonce[:8], mac },
		"empty":      func() ([]byte, []byte, []byte) { return nil, nonce[:], mac },
	}
	for name, f := range cases {
		c, n, m := f()
		if _, err := k.open(c, n, m); err != ErrCrypto {
			t.Errorf("%s: %v", name, err)
		}
	}
	if pt, err := k.open(ct, nonce[:], mac); err != nil || string(pt) != `{"SaleToPOIResponse":{}}` {
		t.Fatalf("round trip: %v %q", err, pt)
	}
}
