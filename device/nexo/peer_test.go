package nexo

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
)

// peerOpen decrypts a request the way research/nexo.md R2 states the
// scheme, with the standard library only and none of this package's
// crypto: an independent check of what the client sends.
func peerOpen(t *testing.T, pass string, body []byte) (clear map[string]any, trailer map[string]any, plain []byte) {
	t.Helper()
	var env map[string]map[string]any
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("request is not JSON: %v", err)
	}
	req := env["SaleToPOIRequest"]
	if req == nil {
		t.Fatalf("no SaleToPOIRequest: %s", body)
	}
	trailer = req["SecurityTrailer"].(map[string]any)
	dk, _ := pbkdf2.Key(sha1.New, pass, []byte("AdyenNexoV1Salt"), 4000, 80)
	nonce, _ := base64.StdEncoding.DecodeString(trailer["Nonce"].(string))
	ct, _ := base64.StdEncoding.DecodeString(req["NexoBlob"].(string))
	iv := make([]byte, 16)
	for i := range iv {
		iv[i] = dk[64+i] ^ nonce[i]
	}
	block, _ := aes.NewCipher(dk[32:64])
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pt = pt[:len(pt)-int(pt[len(pt)-1])]
	m := hmac.New(sha256.New, dk[:32])
	m.Write(pt)
	if got := base64.StdEncoding.EncodeToString(m.Sum(nil)); got != trailer["Hmac"] {
		t.Fatalf("HMAC %s, want %s", trailer["Hmac"], got)
	}
	return req["MessageHeader"].(map[string]any), trailer, pt
}

// terminalCert makes a root and a leaf named like the terminal's.
func terminalCert(t *testing.T, cn string) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rt := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "peer root"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rder, err := x509.CreateCertificate(rand.Reader, rt, rt, &rk.PublicKey, rk)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rder)
	lt := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		DNSNames: []string{cn}}
	lder, err := x509.CreateCertificate(rand.Reader, lt, root, &lk.PublicKey, rk)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := RootPool(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rder}))
	return pool, tls.Certificate{Certificate: [][]byte{lder}, PrivateKey: lk}
}

// TestSaleAgainstRealTerminalAnswer: the client's PaymentRequest checked
// by an independent peer against the spec (research/nexo.md §1 "Minimal
// sale request", R2 envelope), answered with the bytes a real V400m test
// terminal sent (encrypted-event-notification.json, Adyen node library
// PR #1715), which the client must read as Adyen's libraries do.
func TestSaleAgainstRealTerminalAnswer(t *testing.T) {
	const pass, poi = "P@ssw0rd123456", "V400m-347374578"
	answer, err := os.ReadFile("testdata/encrypted-event-notification.json")
	if err != nil {
		t.Fatal(err)
	}
	roots, cert := terminalCert(t, poi+".test.terminal.adyen.com")
	var gotPath, gotType string
	var clear map[string]any
	var inner struct {
		SaleToPOIRequest struct {
			MessageHeader  map[string]any
			PaymentRequest map[string]map[string]map[string]any
		}
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotType = r.URL.Path, r.Header.Get("Content-Type")
		body, _ := io.ReadAll(r.Body)
		var trailer map[string]any
		var pt []byte
		clear, trailer, pt = peerOpen(t, pass, body)
		if !reflect.DeepEqual(trailer["KeyIdentifier"], "Key123456789crypt") || trailer["KeyVersion"] != 1.0 || trailer["AdyenCryptoVersion"] != 1.0 {
			t.Errorf("trailer %v", trailer)
		}
		dec := json.NewDecoder(strings.NewReader(string(pt)))
		dec.UseNumber()
		if err := dec.Decode(&inner); err != nil {
			t.Errorf("plaintext %s: %v", pt, err)
		}
		w.Write(answer)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()

	key, _ := DeriveKey(pass, "Key123456789crypt", 1)
	c, err := New(Options{ID: "t1", Addr: "tls://" + strings.TrimPrefix(srv.URL, "https://"), POIID: poi, SaleID: "406aa21f8b", Key: key,
		Trust: Trust{Roots: roots, Env: EnvTest}, StatusWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.serviceID = func() string { return "406aa21f8b" } // the ServiceID the terminal answered
	res, err := c.Authorize(t.Context(), device.Charge{Amount: 100, Currency: "EUR", Reference: "406aa21f8b"}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// What the peer saw.
	if gotPath != "/nexo/" || gotType != "application/json" {
		t.Errorf("POST %s (%s), want /nexo/ application/json", gotPath, gotType)
	}
	h := inner.SaleToPOIRequest.MessageHeader
	for k, want := range map[string]string{"ProtocolVersion": "3.0", "MessageClass": "Service", "MessageCategory": "Payment",
		"MessageType": "Request", "ServiceID": "406aa21f8b", "SaleID": "406aa21f8b", "POIID": poi} {
		if h[k] != want || clear[k] != want {
			t.Errorf("header %s=%v (clear %v), want %s", k, h[k], clear[k], want)
		}
	}
	pr := inner.SaleToPOIRequest.PaymentRequest
	if got := pr["PaymentTransaction"]["AmountsReq"]["RequestedAmount"]; got != json.Number("1.00") {
		t.Errorf("RequestedAmount %v (%T), want the JSON number 1.00", got, got)
	}
	if pr["PaymentTransaction"]["AmountsReq"]["Currency"] != "EUR" || pr["SaleData"]["SaleTransactionID"]["TransactionID"] != "406aa21f8b" {
		t.Errorf("payment request %v", pr)
	}
	if _, err := time.Parse(time.RFC3339, pr["SaleData"]["SaleTransactionID"]["TimeStamp"].(string)); err != nil {
		t.Errorf("TimeStamp: %v", err)
	}

	// What the client read from the real terminal's answer.
	if res.Outcome != device.Approved || res.Code != 0 {
		t.Fatalf("outcome %s %d %s", res.Outcome, res.Code, res.Message)
	}
	i := res.Info
	if i.Amount != 100 || i.Currency != "EUR" || i.PAN != "5413******9999" || i.CardName != "mc" || i.TerminalID != poi {
		t.Errorf("info %+v", i)
	}
	if want := "CmI6001759412052007.VP57CW8P77C64Q75|2025-10-02T13:34:13.582Z"; i.Ref != want || i.SaleRef != "406aa21f8b" {
		t.Errorf("Ref %q SaleRef %q, want %q", i.Ref, i.SaleRef, want)
	}
	if len(res.Receipts) != 2 || res.Receipts[0].Kind != "merchant" || !slices.Contains(res.Receipts[0].Lines, "Datum: 02/10/2025") ||
		!slices.Contains(res.Receipts[1].Lines, "TOTAL: € 1,00") {
		t.Errorf("receipts %+v", res.Receipts)
	}
}
