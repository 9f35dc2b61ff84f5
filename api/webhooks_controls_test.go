package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/webhook"
)

func field(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	s, _ := d["field"].(string)
	return s
}

// Issue 11 part 7 and issue 18 part 3 through the API: header values are
// masked in every answer, reserved names in any spelling are a 400 naming
// headers, and rate_limit and ordering are set and shown.
func TestWebhookHeadersAndControlsAPI(t *testing.T) {
	e := newWHEnv(t, webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true})
	got := make(chan string, 4)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("Authorization") }))
	t.Cleanup(rcv.Close)
	body := `{"url":"` + rcv.URL + `","headers":{"Authorization":"Bearer api-secret-1"},"rate_limit":{"per_second":5},"ordering":"fifo"}`
	st, c, _ := e.do(e.admin, "POST", "/v1/webhooks", body, "Idempotency-Key", "h1")
	if st != 201 {
		t.Fatalf("create: %d %v", st, c)
	}
	if a := <-got; a != "Bearer api-secret-1" {
		t.Fatalf("ping carried Authorization %q", a)
	}
	check := func(what string, m map[string]any, rate float64, ordering string) {
		t.Helper()
		h, _ := m["headers"].(map[string]any)
		rl, _ := m["rate_limit"].(map[string]any)
		if h["Authorization"] != "Bearer ****" || rl["per_second"] != rate || m["ordering"] != ordering {
			t.Fatalf("%s: headers %v rate_limit %v ordering %v", what, m["headers"], m["rate_limit"], m["ordering"])
		}
		if strings.Contains(mustMarshal(m), "api-secret-1") {
			t.Fatalf("%s shows the header value", what)
		}
	}
	check("create", c, 5, "fifo")
	if rl := c["rate_limit"].(map[string]any); rl["burst"] != 5.0 {
		t.Fatalf("default burst %v", rl["burst"])
	}
	id := c["id"].(string)
	_, g, _ := e.do(e.admin, "GET", "/v1/webhooks/"+id, "")
	check("get", g, 5, "fifo")
	st, p, _ := e.do(e.admin, "PATCH", "/v1/webhooks/"+id, `{"rate_limit":{"per_second":0},"ordering":"none","headers":{"Authorization":"Bearer ****"}}`)
	if st != 200 {
		t.Fatalf("patch: %d %v", st, p)
	}
	check("patch", p, 0, "none")

	for _, c := range []struct{ body, code, field string }{
		{`{"headers":{"X_Webhook_Signature":"x"}}`, api.CodeValidation, "headers.X_Webhook_Signature"},
		{`{"headers":{"webhook_id":"x"}}`, api.CodeValidation, "headers.webhook_id"},
		{`{"headers":{"CONTENT_TYPE":"text/plain"}}`, api.CodeValidation, "headers.CONTENT_TYPE"},
		{`{"headers":{"X Y":"x"}}`, api.CodeValidation, "headers.X Y"},
		{`{"rate_limit":{"per_second":-1}}`, api.CodeValidation, "rate_limit.per_second"},
		{`{"rate_limit":{"per_second":1,"burst":-2}}`, api.CodeValidation, "rate_limit.burst"},
		{`{"ordering":"lifo"}`, api.CodeValidation, "ordering"},
		{`{"rate_limit":{"rps":1}}`, api.CodeInvalidJSON, ""},
	} {
		st, m, _ := e.do(e.admin, "PATCH", "/v1/webhooks/"+id, c.body)
		if st != 400 || errCode(m) != c.code || c.field != "" && field(m) != c.field {
			t.Fatalf("%s: %d %v", c.body, st, m)
		}
	}
}

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Issue 18 part 1 through the API: type and nats are checked field by
// field; the type of an endpoint cannot change.
func TestWebhookNATSFieldsAPI(t *testing.T) {
	e := newWHEnv(t, webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true})
	for _, c := range []struct{ body, code, field string }{
		{`{"type":"nats","url":"nats://127.0.0.1:1","nats":{"subject":"a.>"}}`, api.CodeValidation, "nats.subject"},
		{`{"type":"nats","url":"https://127.0.0.1:1","nats":{"subject":"a"}}`, api.CodeValidation, "url"},
		{`{"type":"nats","url":"nats://127.0.0.1:1"}`, api.CodeValidation, "nats"},
		{`{"type":"mqtt","url":"nats://127.0.0.1:1"}`, api.CodeValidation, "type"},
		{`{"type":"nats","url":"nats://127.0.0.1:1","nats":{"subject":"a","bogus":1}}`, api.CodeInvalidJSON, ""},
	} {
		st, m, _ := e.do(e.admin, "POST", "/v1/webhooks", c.body, "Idempotency-Key", c.body)
		if st != 400 || errCode(m) != c.code || c.field != "" && field(m) != c.field {
			t.Fatalf("%s: %d %v", c.body, st, m)
		}
	}
	rcv, _ := receiver(t, 200)
	st, m, _ := e.do(e.admin, "POST", "/v1/webhooks", `{"url":"`+rcv.URL+`"}`, "Idempotency-Key", "w1")
	if st != 201 || m["type"] != "webhook" {
		t.Fatalf("create: %d %v", st, m)
	}
	if st, m, _ := e.do(e.admin, "PATCH", "/v1/webhooks/"+m["id"].(string), `{"type":"nats"}`); st != 400 || field(m) != "type" {
		t.Fatalf("patch type: %d %v", st, m)
	}
}
