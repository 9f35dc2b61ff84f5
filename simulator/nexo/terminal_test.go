package nexo

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// peer is a sale system written from research/nexo.md R2 with the
// standard library only, independent of device/nexo's codec.
type peer struct{ hmacKey, aesKey, ivBase []byte }

func newPeer(pass string) *peer {
	dk, _ := pbkdf2.Key(sha1.New, pass, []byte("AdyenNexoV1Salt"), 4000, 80)
	return &peer{dk[:32], dk[32:64], dk[64:80]}
}

func (p *peer) seal(t testing.TB, header, plain string) []byte {
	t.Helper()
	nonce := bytes.Repeat([]byte{7}, 16)
	iv := make([]byte, 16)
	for i := range iv {
		iv[i] = p.ivBase[i] ^ nonce[i]
	}
	pad := 16 - len(plain)%16
	pt := append([]byte(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	block, _ := aes.NewCipher(p.aesKey)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(pt, pt)
	m := hmac.New(sha256.New, p.hmacKey)
	m.Write([]byte(plain))
	return []byte(`{"SaleToPOIRequest":{"MessageHeader":` + header + `,"NexoBlob":"` + base64.StdEncoding.EncodeToString(pt) +
		`","SecurityTrailer":{"AdyenCryptoVersion":1,"KeyIdentifier":"Key1","KeyVersion":1,"Nonce":"` +
		base64.StdEncoding.EncodeToString(nonce) + `","Hmac":"` + base64.StdEncoding.EncodeToString(m.Sum(nil)) + `"}}}`)
}

func (p *peer) open(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var env map[string]map[string]any
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	r := env["SaleToPOIResponse"]
	tr := r["SecurityTrailer"].(map[string]any)
	nonce, _ := base64.StdEncoding.DecodeString(tr["Nonce"].(string))
	ct, _ := base64.StdEncoding.DecodeString(r["NexoBlob"].(string))
	iv := make([]byte, 16)
	for i := range iv {
		iv[i] = p.ivBase[i] ^ nonce[i]
	}
	block, _ := aes.NewCipher(p.aesKey)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(ct, ct)
	ct = ct[:len(ct)-int(ct[len(ct)-1])]
	m := hmac.New(sha256.New, p.hmacKey)
	m.Write(ct)
	if base64.StdEncoding.EncodeToString(m.Sum(nil)) != tr["Hmac"] {
		t.Fatal("answer HMAC does not verify")
	}
	var out map[string]any
	json.Unmarshal(ct, &out)
	return out["SaleToPOIResponse"].(map[string]any)
}

func header(cat, sid string) string {
	return `{"ProtocolVersion":"3.0","MessageClass":"Service","MessageCategory":"` + cat + `","MessageType":"Request","ServiceID":"` +
		sid + `","SaleID":"peer","POIID":"V400m-324688179"}`
}

func saleRequest(sid, amount string) string {
	return `{"SaleToPOIRequest":{"MessageHeader":` + header("Payment", sid) + `,"PaymentRequest":{"SaleData":{"SaleTransactionID":` +
		`{"TransactionID":"t-` + sid + `","TimeStamp":"2025-01-07T14:30:00.000Z"}},"PaymentTransaction":{"AmountsReq":{"Currency":"EUR","RequestedAmount":` + amount + `}}}}}`
}

func post(t *testing.T, sim *Terminal, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	sim.handle(w, httptest.NewRequest(http.MethodPost, "/nexo/", bytes.NewReader(body)))
	return w
}

func TestTerminalAgainstPeer(t *testing.T) {
	sim, err := New(Options{Step: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := newPeer("posgate-simulator")
	w := post(t, sim, p.seal(t, header("Payment", "S1"), saleRequest("S1", "10.99")))
	resp := p.open(t, w.Body.Bytes())
	h := resp["MessageHeader"].(map[string]any)
	if h["MessageType"] != "Response" || h["ServiceID"] != "S1" || h["MessageCategory"] != "Payment" {
		t.Fatalf("header %v", h)
	}
	pr := resp["PaymentResponse"].(map[string]any)
	if pr["Response"].(map[string]any)["Result"] != "Success" {
		t.Fatalf("payment %v", pr)
	}
	if got := pr["PaymentResult"].(map[string]any)["AmountsResp"].(map[string]any)["AuthorizedAmount"]; got != 10.99 {
		t.Fatalf("AuthorizedAmount %v", got)
	}
	// The same ServiceID again is refused; a clear request is a format
	// error; another key gets the terminal's crypto error.
	resp = p.open(t, post(t, sim, p.seal(t, header("Payment", "S1"), saleRequest("S1", "1.00"))).Body.Bytes())
	if c := resp["PaymentResponse"].(map[string]any)["Response"].(map[string]any)["ErrorCondition"]; c != "MessageFormat" {
		t.Fatalf("duplicate ServiceID: %v", resp)
	}
	if w := post(t, sim, []byte(saleRequest("S2", "1.00"))); w.Code != 400 {
		t.Fatalf("clear request: %d %s", w.Code, w.Body)
	}
	w = post(t, sim, newPeer("other").seal(t, header("Payment", "S3"), saleRequest("S3", "1.00")))
	if !strings.Contains(w.Body.String(), "Nexo Service: crypto error (3)") {
		t.Fatalf("other key: %s", w.Body)
	}
	if len(sim.Journal()) != 1 {
		t.Fatalf("journal %+v", sim.Journal())
	}
}

// FuzzHandle: no request body makes the terminal panic or answer 500.
func FuzzHandle(f *testing.F) {
	sim, _ := New(Options{Step: time.Microsecond, CardWait: time.Microsecond, Slow: time.Microsecond})
	f.Add([]byte(`{"SaleToPOIRequest":{"MessageHeader":{},"NexoBlob":"AAAA","SecurityTrailer":{}}}`))
	f.Add([]byte(`{}`))
	p := newPeer("posgate-simulator")
	f.Add(p.seal(f, header("Payment", "F1"), saleRequest("F1", "1.00")))
	f.Add(p.seal(f, header("Diagnosis", "F2"), `{"SaleToPOIRequest":{"MessageHeader":`+header("Diagnosis", "F2")+`,"DiagnosisRequest":{}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		sim.handle(w, httptest.NewRequest(http.MethodPost, "/nexo/", bytes.NewReader(body)))
		if w.Code >= 500 {
			t.Fatalf("%d for %q", w.Code, body)
		}
	})
}
