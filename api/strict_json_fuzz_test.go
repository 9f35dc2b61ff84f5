package api

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// cashRequest stands for every request type: a flat object of declared
// fields.
type cashRequest struct {
	Type   string `json:"type"`
	Amount int64  `json:"amount"`
}

// FuzzStrictJSON decodes arbitrary bodies the way every route does. The
// oracle reads the members of a top-level object with a tokenizer that
// allows duplicates: whenever a name appears twice or is not a declared
// name spelled exactly, decoding must fail with a 400 naming a field.
// Every refusal is a 400 INVALID_JSON with a message.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"in","amount":1301}`,
		`{"type":"in","amount":-5,"amount":1301}`,
		`{"Type":"in","amount":1}`,
		`{"type":"in","AMOUNT":1}`,
		`{"type":"in","type":"out"}`,
		`{"type":"in","amount":1,"amount":1}`,
		`{"typ\u0065":"in"}`,
		`{"type":"in","type":"in","Type":"x"}`,
		`{"amount":1} {"amount":2}`,
		`{"amount":1e2}`,
		"{\"type\":\"\xff\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var req cashRequest
		err := decodeBytes([]byte(body), &req)
		var e *Error
		if err != nil && (!errors.As(err, &e) || e.Code != CodeInvalidJSON || statusOf(e.Code) != 400 || e.Message == "") {
			t.Fatalf("body %q: error %v is not a 400 INVALID_JSON with a message", body, err)
		}
		names, ok := topLevelNames(body)
		if !ok {
			return // not a single well-formed object: the decoder may refuse it for any reason
		}
		seen := map[string]bool{}
		for _, n := range names {
			bad := seen[n] || (n != "type" && n != "amount")
			seen[n] = true
			if !bad {
				continue
			}
			if err == nil {
				t.Fatalf("body %q accepted, though member %q is duplicated or not a declared name", body, n)
			}
			if f, _ := e.Details["field"].(string); f == "" || !strings.Contains(e.Message, f) {
				t.Fatalf("body %q: error %q names no field", body, e.Message)
			}
			return
		}
	})
}

// topLevelNames lists the member names of body's top-level object, in
// order and with duplicates, or ok=false if body is not exactly one
// syntactically valid object.
func topLevelNames(body string) (names []string, ok bool) {
	dec := jsontext.NewDecoder(strings.NewReader(body), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(false))
	tok, err := dec.ReadToken()
	if err != nil || tok.Kind() != '{' {
		return nil, false
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, false
		}
		names = append(names, name.String())
		if err := dec.SkipValue(); err != nil {
			return nil, false
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, false
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, false
	}
	return names, true
}
