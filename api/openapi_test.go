package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/posgate/posgate/api"
)

func openAPIValidator(t *testing.T) validator.Validator {
	t.Helper()
	b, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(b)
	if err != nil {
		t.Fatalf("libopenapi cannot read the document: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	return v
}

// TestOpenAPIValidates checks the document against the OpenAPI 3.1
// specification's schema with libopenapi-validator.
func TestOpenAPIValidates(t *testing.T) {
	v := openAPIValidator(t)
	ok, verrs := v.ValidateDocument()
	for _, e := range verrs {
		t.Errorf("%s: %s (%v)", e.Message, e.Reason, e.SchemaValidationErrors)
	}
	if !ok {
		t.Fatal("the OpenAPI document is not valid OpenAPI 3.1")
	}
}

// TestOpenAPIServed: GET /v1/openapi.json needs no key and serves the
// document; with a key it is the same.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	want, _ := api.OpenAPI()
	for _, key := range []string{"", e.pos.ClientID + ":" + e.pos.ClientSecret} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/openapi.json", nil)
		if key != "" {
			req.Header.Set("X-Api-Key", key)
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(b, want) {
			t.Fatalf("key %v: %d %s, %d bytes", key != "", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
		}
	}
}

// TestLiveAnswersMatchOpenAPI sends real requests and validates each
// request and answer (status, body schema) against the document, so the
// documentation types cannot drift from what handlers write.
func TestLiveAnswersMatchOpenAPI(t *testing.T) {
	v := openAPIValidator(t)
	e := newPayEnv(t, payOptions{})
	e.waitReady(t)
	admin, pos := e.admin.ClientID+":"+e.admin.ClientSecret, e.pos.ClientID+":"+e.pos.ClientSecret
	steps := []struct {
		method, path, key, body string
		status                  int
	}{
		{"GET", "/healthz", "", "", 200},
		{"POST", "/v1/api-keys", admin, `{"label":"till 2","role":"pos"}`, 201},
		{"POST", "/v1/api-keys", admin, `{"label":"","role":"pos"}`, 400},
		{"GET", "/v1/api-keys", admin, "", 200},
		{"GET", "/v1/api-keys", pos, "", 403},
		{"GET", "/v1/payments", "", "", 401},
		{"POST", "/v1/payments", pos, saleBody(1250), 201},
		{"POST", "/v1/payments", pos, `{"amount":-1}`, 400},
		{"GET", "/v1/payments", pos, "", 200},
		{"GET", "/v1/payments?limit=0", pos, "", 400},
		{"GET", "/v1/payments/nope", pos, "", 404},
		{"GET", "/v1/devices", pos, "", 200},
		{"GET", "/v1/devices/t1", pos, "", 200},
		{"GET", "/v1/devices/t1/frames", admin, "", 404}, // no trace in this setup
		{"GET", "/v1/certificates", admin, "", 503},
		{"GET", "/v1/webhooks", admin, "", 503},
	}
	for i, s := range steps {
		req, _ := http.NewRequest(s.method, e.srv.URL+s.path, strings.NewReader(s.body))
		if s.key != "" {
			req.Header.Set("X-Api-Key", s.key)
		}
		if s.body != "" {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "openapi-"+itoa(i))
		}
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.status {
			t.Errorf("%s %s: %d, want %d: %s", s.method, s.path, resp.StatusCode, s.status, b)
			continue
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		req.Body = io.NopCloser(strings.NewReader(s.body))
		if ok, verrs := v.ValidateHttpResponse(req, resp); !ok {
			for _, ve := range verrs {
				t.Errorf("%s %s → %d: %s: %s %v\n%s", s.method, s.path, s.status, ve.Message, ve.Reason, ve.SchemaValidationErrors, b)
			}
		}
	}
}

func itoa(i int) string { return strings.TrimSpace(string(rune('a'+i%26))) + string(rune('0'+i/26)) }
