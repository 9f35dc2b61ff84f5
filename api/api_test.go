package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/api"
	"github.com/posgate/posgate/apikey"
	"github.com/posgate/posgate/idempotency"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/store/storetest"
)

type env struct {
	srv   *httptest.Server
	db    *store.DB
	keys  *apikey.Keys
	admin apikey.Created
	pos   apikey.Created
}

func newEnv(t testing.TB) *env { return newEnvWith(t, nil) }

// newEnvWith lets a test add dependencies (printers, terminals…).
func newEnvWith(t testing.TB, with func(d *api.Deps)) *env {
	t.Helper()
	return newEnvOn(t, storetest.Open(t), with)
}

// newEnvOn is newEnvWith on the store db.
func newEnvOn(t testing.TB, db *store.DB, with func(d *api.Deps)) *env {
	t.Helper()
	mk := storetest.MasterKey(t)
	keys := apikey.New(db, mk)
	log := zerolog.Nop() // a fuzz target's F may not be logged to from its workers
	if tt, ok := t.(*testing.T); ok {
		log = zerolog.New(zerolog.NewTestWriter(tt))
	}
	deps := api.Deps{
		Log:   log,
		Store: db,
		Keys:  keys,
		Idem:  idempotency.New(db, mk),
	}
	if with != nil {
		with(&deps)
	}
	h := api.NewHandler(deps)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx := context.Background()
	admin, err := keys.Create(ctx, apikey.NewParams{Label: "admin", Role: apikey.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	pos, err := keys.Create(ctx, apikey.NewParams{Label: "till", Role: apikey.RolePOS})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, db: db, keys: keys, admin: admin, pos: pos}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errorCode(t *testing.T) (string, string) {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not the JSON envelope: %q", r.body)
	}
	return e.Error.Code, e.Error.Message
}

func (e *env) do(t *testing.T, method, path string, key *apikey.Created, body string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		req.Header.Set("X-Api-Key", key.ClientID+":"+key.ClientSecret)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func TestHealthz(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "GET", "/healthz", nil, "")
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"store":"ok"`)) {
		t.Fatalf("healthz %d %s", r.status, r.body)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	t.Run("OK", func(t *testing.T) {
		if r := e.do(t, "GET", "/v1/api-keys", &e.admin, ""); r.status != 200 {
			t.Fatalf("status %d %s", r.status, r.body)
		}
	})
	t.Run("ErrMissing", func(t *testing.T) {
		r := e.do(t, "GET", "/v1/api-keys", nil, "")
		if code, _ := r.errorCode(t); r.status != 401 || code != "UNAUTHORIZED" {
			t.Fatalf("status %d code %s", r.status, code)
		}
	})
	t.Run("ErrWrongSecret", func(t *testing.T) {
		bad := e.admin
		bad.ClientSecret += "x"
		if r := e.do(t, "GET", "/v1/api-keys", &bad, ""); r.status != 401 {
			t.Fatalf("status %d", r.status)
		}
	})
	t.Run("ErrForbidden", func(t *testing.T) {
		r := e.do(t, "GET", "/v1/api-keys", &e.pos, "")
		if code, _ := r.errorCode(t); r.status != 403 || code != "FORBIDDEN" {
			t.Fatalf("status %d code %s", r.status, code)
		}
	})
	t.Run("RevokedOnNextRequest", func(t *testing.T) {
		victim, err := e.keys.Create(context.Background(), apikey.NewParams{Label: "victim", Role: apikey.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if r := e.do(t, "GET", "/v1/api-keys", &victim, ""); r.status != 200 {
			t.Fatalf("before revoke: %d", r.status)
		}
		if r := e.do(t, "DELETE", "/v1/api-keys/"+victim.ID, &e.admin, ""); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if r := e.do(t, "GET", "/v1/api-keys", &victim, ""); r.status != 401 {
			t.Fatalf("after revoke: %d, want 401", r.status)
		}
	})
}

func TestSignedRequests(t *testing.T) {
	e := newEnv(t)
	send := func(ts time.Time, body string, sig string) int {
		stamp := ts.UTC().Format(time.RFC3339)
		if sig == "" {
			sig = base64.StdEncoding.EncodeToString(apikey.Sign(e.admin.ClientSecret, stamp, "POST", "/v1/api-keys", []byte(body)))
		}
		r := e.do(t, "POST", "/v1/api-keys", nil, body, "X-Api-Key", e.admin.ClientID, "X-Timestamp", stamp,
			"X-Signature", sig, "Idempotency-Key", "idem-"+sig[:12], "Content-Type", "application/json")
		return r.status
	}
	body := `{"label":"signed","role":"pos"}`
	now := time.Now()
	stamp := now.UTC().Format(time.RFC3339)
	sig := base64.StdEncoding.EncodeToString(apikey.Sign(e.admin.ClientSecret, stamp, "POST", "/v1/api-keys", []byte(body)))
	if got := send(now, body, sig); got != 201 {
		t.Fatalf("valid signature: %d, want 201", got)
	}
	if got := send(now, body, sig); got != 401 {
		t.Fatalf("replayed signature: %d, want 401", got)
	}
	if got := send(now.Add(-10*time.Minute), body, ""); got != 401 {
		t.Fatalf("stale timestamp: %d, want 401", got)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	huge := `{"label":"` + strings.Repeat("a", 2<<20) + `","role":"pos"}`
	for name, tc := range map[string]struct {
		body     string
		wantText string
	}{
		"ErrMalformed":    {`{"label":`, "malformed JSON"},
		"ErrSyntax":       {`{"label" "x"}`, "malformed JSON at byte"},
		"ErrUnknownField": {`{"label":"x","role":"pos","colour":"red"}`, "colour: unknown field"},
		"ErrWrongType":    {`{"label":42,"role":"pos"}`, "label: must be a string, got a number"},
		"ErrTrailing":     {`{"label":"x","role":"pos"} {}`, "data after the JSON value"},
		"ErrEmpty":        {``, "body is empty"},
		"ErrTooLarge":     {huge, "larger than"},
		"ErrBadRole":      {`{"label":"x","role":"root"}`, "role: "},
		"ErrNoLabel":      {`{"role":"pos"}`, "label: "},
		// Strict means strict: one spelling of each name, once.
		"ErrDuplicateKey":   {`{"label":"x","role":"admin","role":"pos"}`, "role: appears twice"},
		"ErrWrongCase":      {`{"Label":"x","role":"pos"}`, `Label: unknown field; names are case-sensitive, did you mean "label"?`},
		"ErrWrongCaseUpper": {`{"label":"x","ROLE":"pos"}`, `ROLE: unknown field; names are case-sensitive, did you mean "role"?`},
		"ErrInvalidUTF8":    {"{\"label\":\"\xff\",\"role\":\"pos\"}", "malformed JSON at byte"},
		"ErrNotObject":      {`[]`, "body: must be an object, got an array"},
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do(t, "POST", "/v1/api-keys", &e.admin, tc.body, "Idempotency-Key", "k-"+name)
			code, msg := r.errorCode(t)
			if r.status != 400 || !strings.Contains(msg, tc.wantText) {
				t.Fatalf("status %d code %s message %q; want 400 mentioning %q", r.status, code, msg, tc.wantText)
			}
		})
	}
	t.Run("ErrNothingWritten", func(t *testing.T) {
		r := e.do(t, "GET", "/v1/api-keys", &e.admin, "")
		var l struct{ Data []apikey.Key }
		if err := json.Unmarshal(r.body, &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Data) != 2 {
			t.Fatalf("%d keys after refused creates, want 2", len(l.Data))
		}
	})
}

func TestIdempotency(t *testing.T) {
	e := newEnv(t)
	body := `{"label":"till 9","role":"pos"}`
	t.Run("ErrMissingKey", func(t *testing.T) {
		r := e.do(t, "POST", "/v1/api-keys", &e.admin, body)
		if code, _ := r.errorCode(t); r.status != 400 || code != "IDEMPOTENCY_KEY_REQUIRED" {
			t.Fatalf("status %d code %s", r.status, code)
		}
	})
	t.Run("Replay", func(t *testing.T) {
		first := e.do(t, "POST", "/v1/api-keys", &e.admin, body, "Idempotency-Key", "abc")
		second := e.do(t, "POST", "/v1/api-keys", &e.admin, body, "Idempotency-Key", "abc")
		if first.status != 201 || second.status != 201 || !bytes.Equal(first.body, second.body) {
			t.Fatalf("first %d %s\nsecond %d %s", first.status, first.body, second.status, second.body)
		}
		if second.header.Get("Idempotent-Replayed") != "true" {
			t.Fatal("replay not marked")
		}
	})
	t.Run("ErrDifferentBody", func(t *testing.T) {
		r := e.do(t, "POST", "/v1/api-keys", &e.admin, `{"label":"other","role":"pos"}`, "Idempotency-Key", "abc")
		if code, _ := r.errorCode(t); r.status != 422 || code != "IDEMPOTENCY_KEY_REUSED" {
			t.Fatalf("status %d code %s", r.status, code)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		bodies := make([][]byte, 8)
		for i := range bodies {
			wg.Go(func() {
				r := e.do(t, "POST", "/v1/api-keys", &e.admin, `{"label":"conc","role":"pos"}`, "Idempotency-Key", "conc")
				if r.status != 201 {
					t.Errorf("status %d %s", r.status, r.body)
				}
				bodies[i] = r.body
			})
		}
		wg.Wait()
		for _, b := range bodies[1:] {
			if !bytes.Equal(b, bodies[0]) {
				t.Fatalf("concurrent retries got different answers:\n%s\n%s", bodies[0], b)
			}
		}
		r := e.do(t, "GET", "/v1/api-keys", &e.admin, "")
		if n := bytes.Count(r.body, []byte(`"label":"conc"`)); n != 1 {
			t.Fatalf("%d keys made from one idempotency key, want 1", n)
		}
	})
}

func TestUnknownRouteIsJSON(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "GET", "/v1/nothing", &e.admin, "")
	if code, _ := r.errorCode(t); r.status != 404 || code != "NOT_FOUND" {
		t.Fatalf("status %d code %s", r.status, code)
	}
}

// FuzzCreateAPIKey sends arbitrary bodies to a creating route: every
// answer is 201 or a 4xx JSON envelope, never a 500.
func FuzzCreateAPIKey(f *testing.F) {
	for _, s := range []string{`{"label":"a","role":"pos"}`, `{"label":1}`, `[]`, `{"role":"admin","label":"x","certificate_id":null}`, `{"label":"\u0000","role":"pos"}`, "\xff"} {
		f.Add(s)
	}
	e := newEnv(f)
	var n int
	f.Fuzz(func(t *testing.T, body string) {
		n++
		r := e.do(t, "POST", "/v1/api-keys", &e.admin, body, "Idempotency-Key", fmt.Sprintf("fuzz-%d-%d", time.Now().UnixNano(), n))
		switch {
		case r.status == 201:
		case r.status >= 400 && r.status < 500:
			if code, msg := r.errorCode(t); code == "" || msg == "" {
				t.Fatalf("status %d without code or message: %s", r.status, r.body)
			}
		default:
			t.Fatalf("status %d for body %q: %s", r.status, body, r.body)
		}
	})
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.do(t, "GET", "/v1/api-keys", &e.admin, "")
	e.do(t, "GET", "/v1/api-keys", &e.pos, "")
	r := e.do(t, "GET", "/metrics", nil, "")
	body := string(r.body)
	for _, want := range []string{
		`posgate_http_requests_total{route="GET /v1/api-keys",status="200"} 1`,
		`posgate_http_requests_total{route="GET /v1/api-keys",status="403"} 1`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if r.status != 200 || strings.Contains(body, e.admin.ClientID) {
		t.Fatalf("status %d, or a client id leaked into metrics", r.status)
	}
}

// A created key's secret is in the response, and the response is kept for
// idempotent retries: it must be kept sealed, never in plaintext. A retry
// still gets the same secret.
func TestKeptAnswersHoldNoPlaintextSecret(t *testing.T) {
	e := newEnv(t)
	first := e.do(t, "POST", "/v1/api-keys", &e.admin, `{"label":"kept","role":"pos"}`, "Idempotency-Key", "kept-1")
	var c apikey.Created
	if err := json.Unmarshal(first.body, &c); err != nil || c.ClientSecret == "" {
		t.Fatalf("create: %d %s", first.status, first.body)
	}
	again := e.do(t, "POST", "/v1/api-keys", &e.admin, `{"label":"kept","role":"pos"}`, "Idempotency-Key", "kept-1")
	if !bytes.Equal(first.body, again.body) {
		t.Fatalf("retry got another answer:\n%s\n%s", first.body, again.body)
	}
	var raw []byte
	for _, suffix := range []string{"", "-wal"} {
		b, _ := os.ReadFile(e.db.Path() + suffix)
		raw = append(raw, b...)
	}
	if len(raw) == 0 {
		t.Fatal("read no database bytes")
	}
	if bytes.Contains(raw, []byte(c.ClientSecret)) || bytes.Contains(raw, []byte(c.ClientSecret[3:])) {
		t.Fatal("the database holds the client secret in plaintext")
	}
}
