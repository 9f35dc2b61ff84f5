package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
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

// decodeBytes is decodeJSON's strict decoding of an already read body.
func decodeBytes(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return &Error{Code: CodeInvalidJSON, Message: "request body is empty; send a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Code: CodeInvalidJSON, Message: "request body has data after the JSON value"}
	}
	return nil
}

// jsonError turns an encoding/json error into a client error naming the
// field or the byte offset.
func jsonError(err error) *Error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return &Error{Code: CodeInvalidJSON, Message: fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error()),
			Details: map[string]any{"offset": syn.Offset}}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return &Error{Code: CodeInvalidJSON, Message: fmt.Sprintf("%s: must be %s, got %s", field, jsonType(typ.Type.Kind().String()), typ.Value),
			Details: map[string]any{"field": field}}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &Error{Code: CodeInvalidJSON, Message: "malformed JSON: unexpected end of body"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Code: CodeInvalidJSON, Message: fmt.Sprintf("%s: unknown field", field),
			Details: map[string]any{"field": field}}
	default:
		var e *Error
		if errors.As(err, &e) {
			return e
		}
		return &Error{Code: CodeInvalidJSON, Message: "malformed JSON: " + err.Error()}
	}
}

// jsonType names a Go kind the way a JSON client thinks of it.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "float32", "float64":
		return "a number"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	default:
		return kind
	}
}
