package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxBody is the largest request body accepted.
const MaxBody = 1 << 20

// writeJSON writes v with status. Encoding errors can only come from a
// broken connection at this point, so they are dropped.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// list is the shape of every list response.
type list[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// writeList writes items and the cursor of the next page ("" at the end).
func writeList[T any](w http.ResponseWriter, items []T, next string) {
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, list[T]{Data: items, NextCursor: next})
}

// readBody reads the whole request body, refusing more than MaxBody bytes.
// The auth middleware reads it first (a signature covers the body) and
// puts it back, so handlers may call this again.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, &Error{Code: CodeBodyTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", MaxBody)}
	}
	if err != nil {
		return nil, &Error{Code: CodeInvalidJSON, Message: "read request body: " + err.Error()}
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// decodeJSON decodes the request body into v strictly: JSON only, one
// value, no unknown fields, no trailing data, at most MaxBody bytes. The
// error names the offending field or position.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if err := checkJSONType(r); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	return decodeBytes(b, v)
}

// checkJSONType refuses a body declared as anything but JSON. A missing
// Content-Type is taken as JSON; curl -d without -H sends a form type and
// is refused with a message that says what to send.
func checkJSONType(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{Code: CodeUnsupportedMedia, Message: "Content-Type must be application/json"}
		}
	}
	return nil
}

// strictJSON are the decoding options of every request body: member
// names match exactly (no case folding, as encoding/json v1 did), a name
// may appear once per object (v1 kept the last of "amount":-5,"amount":1301),
// unknown members and invalid UTF-8 are errors.
var strictJSON = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.MatchCaseInsensitiveNames(false),
	jsontext.AllowDuplicateNames(false),
	jsontext.AllowInvalidUTF8(false),
)

// decodeBytes is decodeJSON's strict decoding of an already read body:
// one JSON value, decoded with strictJSON by go-json-experiment/json (the
// encoding/json/v2 design), nothing after it.
func decodeBytes(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return &Error{Code: CodeInvalidJSON, Message: "request body is empty; send a JSON object"}
	}
	dec := jsontext.NewDecoder(bytes.NewReader(b), strictJSON)
	if err := jsonv2.UnmarshalDecode(dec, v, strictJSON); err != nil {
		return jsonError(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return &Error{Code: CodeInvalidJSON, Message: "request body has data after the JSON value"}
	}
	return nil
}

// jsonError turns a decoding error into a client error naming the field
// (as items[0].quantity) or the byte offset.
func jsonError(err error) *Error {
	var (
		syn *jsontext.SyntacticError
		sem *jsonv2.SemanticError
		e   *Error
	)
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &syn):
		field := fieldOf(syn.JSONPointer)
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return &Error{Code: CodeInvalidJSON, Message: field + ": appears twice in one object; send each field once",
				Details: map[string]any{"field": field, "offset": syn.ByteOffset}}
		case errors.Is(syn.Err, io.ErrUnexpectedEOF):
			return &Error{Code: CodeInvalidJSON, Message: "malformed JSON: unexpected end of body"}
		}
		msg := fmt.Sprintf("malformed JSON at byte %d: %v", syn.ByteOffset, syn.Err)
		d := map[string]any{"offset": syn.ByteOffset}
		if field != "body" {
			msg += " (in " + field + ")"
			d["field"] = field
		}
		return &Error{Code: CodeInvalidJSON, Message: msg, Details: d}
	case errors.As(err, &sem):
		field := fieldOf(sem.JSONPointer)
		if errors.Is(sem.Err, jsonv2.ErrUnknownName) {
			name := sem.JSONPointer.LastToken()
			if want := caseFold(sem.GoType, name); want != "" {
				return &Error{Code: CodeInvalidJSON, Message: fmt.Sprintf("%s: unknown field; names are case-sensitive, did you mean %q?", field, want),
					Details: map[string]any{"field": field}}
			}
			return &Error{Code: CodeInvalidJSON, Message: field + ": unknown field", Details: map[string]any{"field": field}}
		}
		want, got := jsonType(sem.GoType), kindName(sem.JSONKind)
		var typ *json.UnmarshalTypeError // a v1 UnmarshalJSON method's own error says what it wanted
		if errors.As(sem.Err, &typ) && typ.Type != nil {
			want = jsonType(typ.Type)
		}
		if sem.JSONKind == '0' && len(sem.JSONValue) > 0 && len(sem.JSONValue) <= 32 {
			got = "the number " + string(sem.JSONValue)
		}
		return &Error{Code: CodeInvalidJSON, Message: fmt.Sprintf("%s: must be %s, got %s", field, want, got),
			Details: map[string]any{"field": field}}
	default:
		return &Error{Code: CodeInvalidJSON, Message: "malformed JSON: " + err.Error()}
	}
}

// fieldOf writes a JSON pointer the way validation errors name fields:
// /items/0/quantity is items[0].quantity; the empty pointer is "body".
func fieldOf(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

// caseFold returns the JSON name of t's field that name matches in
// another case, or "".
func caseFold(t reflect.Type, name string) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return ""
	}
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if tag != name && strings.EqualFold(tag, name) {
			return tag
		}
	}
	return ""
}

// kindName names a JSON kind as a client writes it.
func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "true or false"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	default:
		return "another JSON value"
	}
}

// jsonType names a Go type the way a JSON client thinks of it.
func jsonType(t reflect.Type) string {
	if t == nil {
		return "another JSON type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	default:
		return t.Kind().String()
	}
}
