package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

type recordMux struct{ patterns []string }

func (m *recordMux) Handle(p string, _ http.Handler) { m.patterns = append(m.patterns, p) }

// TestRouterMatchesTable walks what registerRoutes registers: every
// registered pattern is in Routes (so documented), and every Routes entry
// is what the live mux picks for a request to it.
func TestRouterMatchesTable(t *testing.T) {
	rec := &recordMux{}
	registerRoutes(rec, http.NewServeMux(), Deps{Log: zerolog.Nop()})
	var table []string
	for _, rt := range Routes {
		table = append(table, rt.Pattern)
	}
	for _, p := range rec.patterns {
		if isCatchAll(p) {
			continue
		}
		if !slices.Contains(table, p) {
			t.Errorf("route %q is served but not in the Routes table (so not documented)", p)
		}
	}
	mux := http.NewServeMux()
	addRoutes(mux, Deps{Log: zerolog.Nop()})
	for _, rt := range Routes {
		method, path := rt.MethodPath()
		path = pathParam.ReplaceAllString(path, "x1")
		req := httptest.NewRequest(method, path, nil)
		if _, got := mux.Handler(req); got != rt.Pattern {
			t.Errorf("documented %q: the mux serves %s %s with %q", rt.Pattern, method, path, got)
		}
	}
}

// TestOpenAPIDocumentsEveryRoute reads the generated document back: each
// route with its method, its success answer, its error answers with the
// Error schema, and every schema reference resolving.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	b, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI    string                                       `json:"openapi"`
		Paths      map[string]map[string]map[string]any         `json:"paths"`
		Components struct{ Schemas map[string]json.RawMessage } `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	n := 0
	for _, ops := range doc.Paths {
		n += len(ops)
	}
	if n != len(Routes) {
		t.Errorf("document has %d operations, Routes %d", n, len(Routes))
	}
	for _, rt := range Routes {
		method, path := rt.MethodPath()
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("%s missing from the document", rt.Pattern)
			continue
		}
		resps, _ := op["responses"].(map[string]any)
		if _, ok := resps[itoa(rt.Status)]; !ok {
			t.Errorf("%s: no %d answer", rt.Pattern, rt.Status)
		}
		for status := range rt.AllErrors() {
			r, _ := resps[itoa(status)].(map[string]any)
			if !strings.Contains(mustJSON(t, r), `"#/components/schemas/Error"`) {
				t.Errorf("%s: error answer %d has no Error schema", rt.Pattern, status)
			}
		}
		if rt.Req != nil && op["requestBody"] == nil {
			t.Errorf("%s: request body undocumented", rt.Pattern)
		}
		if rt.Role != RoleNone && len(rt.AllErrors()[401]) == 0 {
			t.Errorf("%s: keyed route without 401", rt.Pattern)
		}
	}
	for _, ref := range refRe.FindAllStringSubmatch(string(b), -1) {
		if _, ok := doc.Components.Schemas[ref[1]]; !ok {
			t.Errorf("dangling $ref %s", ref[1])
		}
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var refRe = regexp.MustCompile(`"#/components/schemas/([^"]+)"`)
