package nexo

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzOpen: no input panics the envelope decoder, and whatever it
// accepts verified under the key (so it round-trips through Seal).
func FuzzOpen(f *testing.F) {
	k, _ := DeriveKey("p@ssw0rd123456", "CryptoKeyIdentifier12345", 1)
	for _, name := range []string{"payment-sync-encrypted-success.json", "java-payment-local-success.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"SaleToPOIResponse":{"NexoBlob":"AAAA","SecurityTrailer":{"AdyenCryptoVersion":1,"KeyIdentifier":"CryptoKeyIdentifier12345","KeyVersion":1,"Nonce":"","Hmac":""}}}`))
	f.Add([]byte(`{"errors":["Nexo Service: crypto error (3)"],"ServiceID":"-NULL-"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w, pt, err := Open(Single(k), body)
		if err != nil {
			return
		}
		sealed, err := Seal(k, w, nil, pt, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, back, err := Open(Single(k), sealed); err != nil || string(back) != string(pt) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzParseNotification: the listener's input path never panics.
func FuzzParseNotification(f *testing.F) {
	k, _ := DeriveKey("P@ssw0rd123456", "Key123456789crypt", 1)
	b, _ := os.ReadFile("testdata/encrypted-event-notification.json")
	f.Add(b)
	ev, _ := Seal(k, WrapRequest, nil, []byte(`{"SaleToPOIRequest":{"MessageHeader":{"MessageClass":"Event","MessageCategory":"Event","MessageType":"Notification","POIID":"V400m-1"},"EventNotification":{"EventToNotify":"Shutdown"}}}`), nil)
	f.Add(ev)
	f.Fuzz(func(t *testing.T, body []byte) {
		ParseNotification(Single(k), "V400m-1", body)
	})
}

// FuzzResponse: any decrypted answer, however odd, maps to a result
// without panicking, and a card number never leaves it unmasked.
func FuzzResponse(f *testing.F) {
	k, _ := DeriveKey("P@ssw0rd123456", "Key123456789crypt", 1)
	b, _ := os.ReadFile("testdata/encrypted-event-notification.json")
	if _, pt, err := Open(Single(k), b); err == nil {
		f.Add(pt)
	}
	f.Add([]byte(`{"SaleToPOIResponse":{"PaymentResponse":{"Response":{"Result":"Partial"},"PaymentResult":{"AmountsResp":{"AuthorizedAmount":"1e9"},"PaymentInstrumentData":{"CardData":{"MaskedPan":"4111111111111111"}}}}}}`))
	f.Add([]byte(`{"SaleToPOIResponse":{"ReversalResponse":{"Response":{"Result":"Failure","ErrorCondition":"NotAllowed"},"ReversedAmount":"-1"}}}`))
	f.Fuzz(func(t *testing.T, pt []byte) {
		var m ResponseMessage
		if json.Unmarshal(pt, &m) != nil || m.SaleToPOIResponse == nil {
			return
		}
		r := m.SaleToPOIResponse
		if r.PaymentResponse != nil {
			res := paymentResult(r.PaymentResponse, "V400m-1", "EUR")
			digits := 0
			for _, c := range res.Info.PAN {
				if c >= '0' && c <= '9' {
					digits++
				}
			}
			if digits > 8 {
				t.Fatalf("PAN %q shows %d digits", res.Info.PAN, digits)
			}
		}
		if r.ReversalResponse != nil {
			reversalResult(r.ReversalResponse, "V400m-1", "")
		}
	})
}
