package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/invopop/jsonschema"
)

// Route is one entry of Routes: what the mux serves and what the docs say.
type Route struct {
	Pattern  string // "METHOD /path", as http.ServeMux reads it
	Role     Role
	Idem     Idem
	Handler  func(Deps) http.Handler
	Tag      string // group in the docs
	Summary  string
	Query    []Param
	Req      any    // zero value of the JSON request body; nil: no body
	Resp     any    // zero value of the JSON answer; nil: none (or RespType)
	RespType string // a non-JSON answer's media type (image/png, text/plain)
	List     bool   // the answer is {"data": [Resp…], "next_cursor": ""}
	Status   int    // the success status
	Errors   []ErrorDoc
}

// Role is who may call a route.
type Role string

// Roles of Route.
const (
	RoleNone  Role = "none"  // no key
	RoleAny   Role = "any"   // any valid key
	RoleAdmin Role = "admin" // an admin key
)

// Idem says how a route treats Idempotency-Key.
type Idem int

// Idempotency kinds of Route.
const (
	IdemNone     Idem = iota
	IdemRequired      // wrapped in idempotent(): key required, a retry replays
	IdemOwn           // key required, the route keeps its own record
)

// Param is a documented query parameter.
type Param struct{ Name, Doc string }

// ErrorDoc is an error code a route may answer, with its status.
type ErrorDoc struct {
	Code   string
	Status int
}

// errs documents codes at their usual status (statusOf).
func errs(codes ...string) []ErrorDoc {
	out := make([]ErrorDoc, len(codes))
	for i, c := range codes {
		out[i] = ErrorDoc{c, statusOf(c)}
	}
	return out
}

var listQuery = []Param{{"since", "RFC 3339 time: only newer items"}, {"cursor", "next_cursor of the previous page"}, {"limit", "1 to 200"}}

// Documentation-only shapes of bodies the handlers build inline.
type (
	healthDoc struct {
		Status  string `json:"status" jsonschema:"enum=ok,enum=unavailable"`
		Version string `json:"version"`
		Store   string `json:"store" jsonschema:"enum=ok,enum=not writable"`
	}
	apiKeyCreateDoc struct {
		Label         string `json:"label" jsonschema:"required,minLength=1,maxLength=100"`
		Role          string `json:"role" jsonschema:"required,enum=admin,enum=pos"`
		CertificateID string `json:"certificate_id,omitempty" jsonschema:"description=bind the key to a fiscal certificate (id from /v1/certificates)"`
	}
	certificateImportDoc struct {
		PKCS12         string `json:"pkcs12,omitempty" jsonschema:"description=the .p12 file in standard base64 (or certificate_pem + private_key_pem)"`
		Password       string `json:"password,omitempty"`
		CertificatePEM string `json:"certificate_pem,omitempty"`
		PrivateKeyPEM  string `json:"private_key_pem,omitempty"`
		Label          string `json:"label,omitempty" jsonschema:"maxLength=100"`
		TIN            string `json:"tin,omitempty"`
	}
	cashDoc struct {
		Type   string `json:"type" jsonschema:"required,enum=in,enum=out"`
		Amount int64  `json:"amount" jsonschema:"required,minimum=1,maximum=9999999999,description=minor units (cents)"`
	}
	cashResultDoc struct {
		PrinterID string `json:"printer_id"`
		Type      string `json:"type" jsonschema:"enum=in,enum=out"`
		Amount    int64  `json:"amount"`
		Drawer    struct {
			Sum int64 `json:"sum"`
			In  int64 `json:"in"`
			Out int64 `json:"out"`
		} `json:"drawer"`
	}
	recoverDoc struct {
		Since string `json:"since" jsonschema:"required,format=date-time"`
	}
	recoverResultDoc struct {
		Requeued int64 `json:"requeued"`
	}
)

// handleOpenAPI serves the document. It needs no key, like /healthz: it
// describes the API and holds no data.
func handleOpenAPI(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, err := OpenAPI()
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
}

var (
	openAPIOnce sync.Once
	openAPIDoc  []byte
	openAPIErr  error
)

// OpenAPI returns the OpenAPI 3.1 document of Routes.
func OpenAPI() ([]byte, error) {
	openAPIOnce.Do(func() { openAPIDoc, openAPIErr = buildOpenAPI() })
	return openAPIDoc, openAPIErr
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

func schemaName(t reflect.Type) string {
	pkg := t.PkgPath()
	if i := strings.LastIndex(pkg, "/"); i >= 0 {
		pkg = pkg[i+1:]
	}
	if pkg == "api" || pkg == "" {
		return t.Name()
	}
	return pkg + "." + t.Name()
}

// schemas reflects Go types into JSON Schema 2020-12 (OpenAPI 3.1's
// dialect), collecting named definitions for components.
type schemas struct {
	resp, req *jsonschema.Reflector
	defs      map[string]json.RawMessage
}

func newSchemas() *schemas {
	return &schemas{
		// Answers: every field without omitempty is present; posgate may
		// add fields, so more are allowed.
		resp: &jsonschema.Reflector{Anonymous: true, AllowAdditionalProperties: true, Namer: schemaName, Mapper: mapType},
		// Requests are decoded strictly: unknown fields are refused.
		req:  &jsonschema.Reflector{Anonymous: true, RequiredFromJSONSchemaTags: true, Namer: schemaName, Mapper: mapType},
		defs: map[string]json.RawMessage{},
	}
}

// ref returns a schema referencing v's type, adding its definitions.
func (s *schemas) ref(v any, request bool) (json.RawMessage, error) {
	r := s.resp
	if request {
		r = s.req
	}
	sc := r.Reflect(v)
	markNullable(reflect.TypeOf(v), sc.Definitions, map[reflect.Type]bool{})
	for name, d := range sc.Definitions {
		b, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("marshal schema %s: %w", name, err)
		}
		b = bytes.ReplaceAll(b, []byte(`"#/$defs/`), []byte(`"#/components/schemas/`))
		if old, ok := s.defs[name]; ok && !bytes.Equal(old, b) {
			if request {
				return nil, fmt.Errorf("schema %s differs between a request and an answer: give one a documentation type", name)
			}
		}
		if _, ok := s.defs[name]; !ok || !request {
			s.defs[name] = b
		}
	}
	sc.Definitions = nil
	sc.Version = ""
	b, err := json.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("marshal schema: %w", err)
	}
	return bytes.ReplaceAll(b, []byte(`"#/$defs/`), []byte(`"#/components/schemas/`)), nil
}

// markNullable lets a pointer field without omitempty be null: the
// handlers write null for an absent value there (certificate_id,
// result_code), which the reflector's schema would refuse.
func markNullable(t reflect.Type, defs jsonschema.Definitions, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	def := defs[schemaName(t)]
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			markNullable(f.Type, defs, seen)
			if def == nil || f.Type.Kind() != reflect.Pointer || strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if p, ok := def.Properties.Get(name); ok && p != nil {
				def.Properties.Set(name, &jsonschema.Schema{AnyOf: []*jsonschema.Schema{p, {Type: "null"}}})
			}
		}
	}
	walk(t)
}

// mapType gives the schema of types whose JSON differs from their Go
// kind: json.Number is a JSON number (quantities, VAT rates).
func mapType(t reflect.Type) *jsonschema.Schema {
	if t == reflect.TypeFor[json.Number]() {
		return &jsonschema.Schema{Type: "number"}
	}
	return nil
}

func errorRef() map[string]any { return map[string]any{"$ref": "#/components/schemas/Error"} }

// commonErrors are the codes a route shares with others of its kind.
func commonErrors(rt Route) []ErrorDoc {
	var out []ErrorDoc
	if rt.Role != RoleNone {
		out = append(out, errs(CodeUnauthorized, CodeRateLimited)...)
	}
	if rt.Role == RoleAdmin {
		out = append(out, errs(CodeForbidden)...)
	}
	if rt.Req != nil {
		out = append(out, errs(CodeInvalidJSON, CodeValidation, CodeBodyTooLarge, CodeUnsupportedMedia)...)
	}
	if len(rt.Query) > 0 {
		out = append(out, errs(CodeValidation)...)
	}
	if rt.Idem != IdemNone {
		out = append(out, errs(CodeIdempotencyMissing, CodeIdempotencyReused)...)
	}
	if rt.Idem == IdemRequired {
		out = append(out, errs(CodeIdempotencyBusy, CodeIdempotencyLimit)...)
	}
	if strings.Contains(rt.Pattern, " /v1/") {
		out = append(out, ErrorDoc{CodeInternal, http.StatusInternalServerError})
	}
	return out
}

// AllErrors is rt's error codes by status, each list sorted and unique.
func (rt Route) AllErrors() map[int][]string {
	seen := map[ErrorDoc]bool{}
	by := map[int][]string{}
	for _, e := range append(commonErrors(rt), rt.Errors...) {
		if !seen[e] {
			seen[e] = true
			by[e.Status] = append(by[e.Status], e.Code)
		}
	}
	for _, c := range by {
		sort.Strings(c)
	}
	return by
}

// MethodPath splits the pattern.
func (rt Route) MethodPath() (string, string) {
	m, p, _ := strings.Cut(rt.Pattern, " ")
	return m, p
}

// documented is Routes, set in init: OpenAPI reading Routes directly
// would be an initialization cycle (Routes holds handleOpenAPI).
var documented []Route

func init() { documented = Routes }

func buildOpenAPI() ([]byte, error) {
	s := newSchemas()
	paths := map[string]map[string]any{}
	for _, rt := range documented {
		method, path := rt.MethodPath()
		op := map[string]any{
			"operationId": operationID(rt),
			"summary":     rt.Summary,
			"tags":        []string{rt.Tag},
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Doc, "schema": map[string]any{"type": "string"}})
		}
		if rt.Idem != IdemNone {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "required": true,
				"description": "1 to 255 printable characters; a retry with the same key and body gets the first answer",
				"schema":      map[string]any{"type": "string", "minLength": 1, "maxLength": 255}})
		}
		if params != nil {
			op["parameters"] = params
		}
		switch rt.Role {
		case RoleNone:
			op["security"] = []any{}
		case RoleAdmin:
			op["description"] = "Needs an admin key."
		}
		if rt.Req != nil {
			sc, err := s.ref(rt.Req, true)
			if err != nil {
				return nil, fmt.Errorf("route %s: %w", rt.Pattern, err)
			}
			op["requestBody"] = map[string]any{"required": true,
				"content": map[string]any{"application/json": map[string]any{"schema": sc}}}
		}
		resps := map[string]any{}
		ok := map[string]any{"description": http.StatusText(rt.Status)}
		switch {
		case rt.Resp != nil:
			sc, err := s.ref(rt.Resp, false)
			if err != nil {
				return nil, fmt.Errorf("route %s: %w", rt.Pattern, err)
			}
			var schema any = sc
			if rt.List {
				schema = map[string]any{"type": "object", "required": []string{"data", "next_cursor"},
					"properties": map[string]any{"data": map[string]any{"type": "array", "items": sc},
						"next_cursor": map[string]any{"type": "string", "description": "empty on the last page"}}}
			}
			ok["content"] = map[string]any{"application/json": map[string]any{"schema": schema}}
		case rt.RespType != "":
			var schema any = map[string]any{"type": "string"}
			if rt.RespType == "application/json" {
				schema = map[string]any{"type": "object"}
			}
			ok["content"] = map[string]any{rt.RespType: map[string]any{"schema": schema}}
		}
		resps[fmt.Sprint(rt.Status)] = ok
		if rt.Pattern == "POST /v1/payments/{id}/cancel" {
			resps["202"] = map[string]any{"description": "Abort sent; the terminal has not ended the payment yet",
				"content": ok["content"]}
		}
		for status, codes := range rt.AllErrors() {
			resps[fmt.Sprint(status)] = map[string]any{
				"description": strings.Join(codes, ", "),
				"content":     map[string]any{"application/json": map[string]any{"schema": errorRef()}},
			}
		}
		op["responses"] = resps
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(method)] = op
	}
	comps := map[string]any{}
	for name, b := range s.defs {
		comps[name] = b
	}
	comps["Error"] = map[string]any{
		"type": "object", "required": []string{"error"},
		"properties": map[string]any{"error": map[string]any{
			"type": "object", "required": []string{"code", "message"},
			"properties": map[string]any{
				"code":    map[string]any{"type": "string", "description": "stable, e.g. VALIDATION_ERROR"},
				"message": map[string]any{"type": "string"},
				"details": map[string]any{"type": "object", "description": "e.g. field: the offending field"},
			},
		}},
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "posgate",
			"version": "1",
			"description": "Payments, fiscal printers, fiscal invoices and webhooks on the shop's computer. " +
				"Authenticate with X-Api-Key; a signed key also sends X-Timestamp and X-Signature (docs/payments.md). " +
				"Errors are {\"error\": {\"code\", \"message\", \"details\"}}.",
		},
		"servers":  []any{map[string]any{"url": "http://127.0.0.1:8080"}},
		"security": []any{map[string]any{"apiKey": []string{}}},
		"paths":    paths,
		"components": map[string]any{
			"schemas": comps,
			"securitySchemes": map[string]any{
				"apiKey": map[string]any{"type": "apiKey", "in": "header", "name": "X-Api-Key"},
			},
		},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode openapi document: %w", err)
	}
	return buf.Bytes(), nil
}

// operationID is a stable name from the pattern: "POST /v1/payments/{id}/cancel"
// → "post_payments_id_cancel".
func operationID(rt Route) string {
	m, p := rt.MethodPath()
	p = strings.TrimPrefix(p, "/v1")
	p = strings.NewReplacer("{", "", "}", "", ".", "_", "-", "_").Replace(p)
	parts := []string{strings.ToLower(m)}
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "_")
}
