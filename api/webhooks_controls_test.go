package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

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
	for i, c := range []struct{ body, code, field string }{
		{`{"type":"nats","url":"nats://127.0.0.1:1","nats":{"subject":"a.>"}}`, api.CodeValidation, "nats.subject"},
		{`{"type":"nats","url":"https://127.0.0.1:1","nats":{"subject":"a"}}`, api.CodeValidation, "url"},
		{`{"type":"nats","url":"nats://127.0.0.1:1"}`, api.CodeValidation, "nats"},
		{`{"type":"mqtt","url":"nats://127.0.0.1:1"}`, api.CodeValidation, "type"},
		{`{"type":"nats","url":"nats://127.0.0.1:1","nats":{"subject":"a","bogus":1}}`, api.CodeInvalidJSON, ""},
		{`{"type":"amqp","url":"amqp://127.0.0.1:1/","amqp":{"exchange":"a b","routing_key":"k"}}`, api.CodeValidation, "amqp.exchange"},
		{`{"type":"amqp","url":"amqp://u:p@127.0.0.1:1/","amqp":{"routing_key":"k"}}`, api.CodeValidation, "url"},
		{`{"type":"amqp","url":"amqp://127.0.0.1:1/"}`, api.CodeValidation, "amqp"},
		{`{"type":"amqp","url":"amqp://127.0.0.1:1/","amqp":{"routing_key":"k"},"kafka":{"topic":"t"}}`, api.CodeValidation, "kafka"},
		{`{"type":"amqp","url":"amqp://127.0.0.1:1/","amqp":{"routing_key":"k","vhost":"x"}}`, api.CodeInvalidJSON, ""},
		{`{"type":"kafka","url":"kafka://127.0.0.1:1","kafka":{"topic":"a/b"}}`, api.CodeValidation, "kafka.topic"},
		{`{"type":"kafka","url":"kafka://127.0.0.1:1","kafka":{"topic":"t","sasl":"plain"}}`, api.CodeValidation, "kafka.user"},
		{`{"type":"kafka","url":"kafka://127.0.0.1:1"}`, api.CodeValidation, "kafka"},
	} {
		st, m, _ := e.do(e.admin, "POST", "/v1/webhooks", c.body, "Idempotency-Key", fmt.Sprint("fields-", i))
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

// A kafka endpoint through the API (against kfake, in-process, SASL
// PLAIN): the password never comes back, not at create, GET or list,
// and a PATCH sending the view back keeps it (the ping after the PATCH
// logs in with the stored one).
func TestWebhookKafkaMaskedAPI(t *testing.T) {
	const password = "api-kafka-pw-5150"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "posgate"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "shop", password))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	e := newWHEnv(t, webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true, Timeout: 5 * time.Second})
	body := `{"type":"kafka","url":"kafka://` + cluster.ListenAddrs()[0] + `","kafka":{"topic":"posgate","sasl":"plain","user":"shop","password":"` + password + `"}}`
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/webhooks", strings.NewReader(body))
	req.Header.Set("X-Api-Key", e.admin)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "kafka-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || strings.Contains(string(raw), password) || !strings.Contains(string(raw), `"password":"****"`) {
		t.Fatalf("create: %d %s", resp.StatusCode, raw)
	}
	var created struct {
		ID    string         `json:"id"`
		Kafka map[string]any `json:"kafka"`
	}
	_ = json.Unmarshal(raw, &created)
	for _, path := range []string{"/v1/webhooks/" + created.ID, "/v1/webhooks"} {
		st, m, _ := e.do(e.admin, "GET", path, "")
		if b, _ := json.Marshal(m); st != 200 || strings.Contains(string(b), password) || !strings.Contains(string(b), `"password":"****"`) {
			t.Fatalf("GET %s: %d %s", path, st, b)
		}
	}
	view, _ := json.Marshal(map[string]any{"kafka": created.Kafka})
	if st, m, _ := e.do(e.admin, "PATCH", "/v1/webhooks/"+created.ID, string(view)); st != 200 {
		t.Fatalf("PATCH with the view sent back: %d %v", st, m)
	}
}
