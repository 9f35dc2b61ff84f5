package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// FuzzWebhookCreateDecode: any body either decodes to a request that
// survives a JSON round trip, or fails with a client error (never 5xx,
// never a panic).
func FuzzWebhookCreateDecode(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://erp.example.com/hook"}`,
		`{"url":"https://x","events":["invoice.created"],"headers":{"A":"b"},"metadata":{"k":"v"},"status":"active","description":"d","category":"c"}`,
		`{"url":1}`, `{"url":"x","nope":true}`, `{"url":"x"} {}`, `[]`, ``, `{"events":null,"url":"u"}`,
		`{"url":"\u0000"}`, `{"headers":{"X":1}}`,
		`{"url":"https://x","rate_limit":{"per_second":2.5,"burst":5},"ordering":"fifo"}`,
		`{"rate_limit":{"per_second":-1}}`, `{"rate_limit":{"rps":1}}`, `{"headers":{"X_Webhook_Signature":"x"}}`,
		`{"type":"nats","url":"tls://h:4222","nats":{"subject":"a.b","stream":"S","user":"u","password":"p","ca_pem":"x"}}`,
		`{"type":"nats","nats":{"token":"t"}}`, `{"nats":null}`, `{"type":1}`,
		`{"type":"amqp","url":"amqps://h/v","amqp":{"exchange":"x","routing_key":"k","user":"u","password":"p","ca_pem":"x"}}`,
		`{"type":"kafka","url":"tls://h:9093","kafka":{"topic":"t","sasl":"scram-sha-512","user":"u","password":"p"}}`,
		`{"amqp":{"exchange":1}}`, `{"kafka":{"topic":null}}`, `{"kafka":[]}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, create bool) {
		req, err := decodeEndpoint(b, create)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if s := statusOf(e.Code); s < 400 || s >= 500 {
				t.Fatalf("code %s maps to %d", e.Code, s)
			}
			return
		}
		if create && (req.URL == nil || *req.URL == "") {
			t.Fatal("create accepted without url")
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeEndpoint(again, create)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", again, err)
		}
		if !reflect.DeepEqual(req, back) {
			t.Fatalf("round trip changed %+v into %+v", req, back)
		}
	})
}
