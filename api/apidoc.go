package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Markdown renders docs/api.md from Routes and the OpenAPI document's
// schemas, so the page says what the router serves. The test in
// apidoc_test.go fails when the checked-in page differs (-update rewrites).
func Markdown() ([]byte, error) {
	b, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	var doc struct {
		Components struct {
			Schemas map[string]schemaDoc `json:"schemas"`
		} `json:"components"`
		Paths map[string]map[string]struct {
			RequestBody *struct {
				Content map[string]struct{ Schema schemaDoc } `json:"content"`
			} `json:"requestBody"`
			Responses map[string]struct {
				Content map[string]struct{ Schema schemaDoc } `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("read openapi document: %w", err)
	}
	var w bytes.Buffer
	w.WriteString(`# HTTP API reference

<!-- Generated from api/routes.go by ` + "`go test ./api -run TestAPIDoc -update`" + `; do not edit. -->

Every route, generated from the same table that registers the handlers
(api/routes.go) and serves the OpenAPI 3.1 document at
` + "`GET /v1/openapi.json`" + ` (no key needed). Tests fail when the router,
this page or the document disagree.

- **Auth**: ` + "`X-Api-Key: <client_id>:<client_secret>`" + `. *admin* routes need an admin
  key, *any key* routes a pos or admin key, *none* routes no key. A signed key
  also sends ` + "`X-Timestamp`" + ` and ` + "`X-Signature`" + ` ([payments.md](payments.md)).
- **Idempotency**: routes marked *required* refuse a request without
  ` + "`Idempotency-Key`" + ` (1–255 printable characters); a retry with the same key and
  body gets the first answer with ` + "`Idempotent-Replayed: true`" + `, the same key with
  another body is 422 IDEMPOTENCY_KEY_REUSED.
- **Errors** are JSON: ` + "`{\"error\": {\"code\": \"VALIDATION_ERROR\", \"message\": \"amount: …\", \"details\": {\"field\": \"amount\"}}}`" + `.
  Lists are ` + "`{\"data\": [...], \"next_cursor\": \"\"}`" + `; pass ` + "`?cursor=`" + ` for the next page.
- Unknown routes answer 404 NOT_FOUND, a known path with another method
  405 METHOD_NOT_ALLOWED with ` + "`Allow`" + `.

`)
	tags := []string{}
	byTag := map[string][]Route{}
	for _, rt := range documented {
		if byTag[rt.Tag] == nil {
			tags = append(tags, rt.Tag)
		}
		byTag[rt.Tag] = append(byTag[rt.Tag], rt)
	}
	w.WriteString("## Routes\n\n| Method | Path | Key | Idempotency-Key | Summary |\n|---|---|---|---|---|\n")
	for _, tag := range tags {
		for _, rt := range byTag[tag] {
			m, p := rt.MethodPath()
			fmt.Fprintf(&w, "| %s | [`%s`](#%s) | %s | %s | %s |\n", m, p, anchor(rt), roleText(rt.Role), idemText(rt.Idem), rt.Summary)
		}
	}
	for _, tag := range tags {
		fmt.Fprintf(&w, "\n## %s\n", tag)
		for _, rt := range byTag[tag] {
			m, p := rt.MethodPath()
			op := doc.Paths[p][strings.ToLower(m)]
			fmt.Fprintf(&w, "\n### %s %s\n\n<a id=\"%s\"></a>%s.\n\n", m, p, anchor(rt), rt.Summary)
			fmt.Fprintf(&w, "- Key: %s. Idempotency-Key: %s.\n", roleText(rt.Role), idemText(rt.Idem))
			for _, q := range rt.Query {
				fmt.Fprintf(&w, "- Query `%s`: %s.\n", q.Name, q.Doc)
			}
			if op.RequestBody != nil {
				fmt.Fprintf(&w, "- Request (JSON): %s\n", op.RequestBody.Content["application/json"].Schema.describe())
			} else {
				w.WriteString("- Request: no body.\n")
			}
			ok := op.Responses[fmt.Sprint(rt.Status)]
			answer := "no body"
			for ct, c := range ok.Content {
				if ct == "application/json" && rt.Resp != nil {
					answer = c.Schema.describe()
				} else {
					answer = "`" + ct + "`"
				}
			}
			fmt.Fprintf(&w, "- Answer: %d, %s\n", rt.Status, answer)
			if rt.Pattern == "POST /v1/payments/{id}/cancel" {
				w.WriteString("- Answer while the terminal has not ended it: 202, the same payment.\n")
			}
			errs := rt.AllErrors()
			statuses := make([]int, 0, len(errs))
			for s := range errs {
				statuses = append(statuses, s)
			}
			sort.Ints(statuses)
			w.WriteString("- Errors:")
			for i, s := range statuses {
				if i > 0 {
					w.WriteString(";")
				}
				fmt.Fprintf(&w, " %d %s", s, strings.Join(errs[s], ", "))
			}
			w.WriteString(".\n")
		}
	}
	w.WriteString("\n## Schemas\n\nFields of the bodies above. *required* fields are always present in\nanswers and must be sent in requests; unknown request fields are refused.\n")
	names := make([]string, 0, len(doc.Components.Schemas))
	for n := range doc.Components.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := doc.Components.Schemas[n]
		fmt.Fprintf(&w, "\n### %s\n\n", n)
		if len(s.Properties) == 0 {
			fmt.Fprintf(&w, "%s\n", s.typeText())
			continue
		}
		w.WriteString("| Field | Type | Required | Notes |\n|---|---|---|---|\n")
		props := make([]string, 0, len(s.Properties))
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		for _, p := range props {
			f := s.Properties[p]
			req := ""
			for _, r := range s.Required {
				if r == p {
					req = "yes"
				}
			}
			fmt.Fprintf(&w, "| `%s` | %s | %s | %s |\n", p, f.typeText(), req, f.notes())
		}
	}
	return w.Bytes(), nil
}

// schemaDoc is the part of a JSON Schema the page shows.
type schemaDoc struct {
	Ref         string               `json:"$ref"`
	Type        any                  `json:"type"`
	Format      string               `json:"format"`
	Items       *schemaDoc           `json:"items"`
	AnyOf       []schemaDoc          `json:"anyOf"`
	Properties  map[string]schemaDoc `json:"properties"`
	Required    []string             `json:"required"`
	Enum        []any                `json:"enum"`
	Description string               `json:"description"`
	Minimum     *float64             `json:"minimum"`
	Maximum     *float64             `json:"maximum"`
	MaxLength   *int                 `json:"maxLength"`
}

func (s schemaDoc) typeText() string {
	switch {
	case s.Ref != "":
		n := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		return "[" + n + "](#" + strings.ToLower(strings.ReplaceAll(n, ".", "")) + ")"
	case len(s.AnyOf) > 0:
		var parts []string
		for _, a := range s.AnyOf {
			parts = append(parts, a.typeText())
		}
		return strings.Join(parts, " or ")
	case s.Items != nil:
		return "array of " + s.Items.typeText()
	case s.Format != "":
		return fmt.Sprint(s.Type) + " (" + s.Format + ")"
	case s.Type == nil:
		return "any"
	}
	return fmt.Sprint(s.Type)
}

func (s schemaDoc) notes() string {
	var n []string
	if len(s.Enum) > 0 {
		var e []string
		for _, v := range s.Enum {
			e = append(e, fmt.Sprintf("`%v`", v))
		}
		n = append(n, "one of "+strings.Join(e, ", "))
	}
	if s.Minimum != nil {
		n = append(n, fmt.Sprintf("min %v", *s.Minimum))
	}
	if s.Maximum != nil {
		n = append(n, fmt.Sprintf("max %v", *s.Maximum))
	}
	if s.MaxLength != nil {
		n = append(n, fmt.Sprintf("at most %d characters", *s.MaxLength))
	}
	if s.Description != "" {
		n = append(n, strings.ReplaceAll(s.Description, "|", "\\|"))
	}
	return strings.Join(n, "; ")
}

// describe is a body schema in one line: a list page or one object.
func (s schemaDoc) describe() string {
	if d, ok := s.Properties["data"]; ok && d.Items != nil {
		return "a list page of " + d.Items.typeText() + "."
	}
	return s.typeText() + "."
}

func anchor(rt Route) string { return operationID(rt) }

func roleText(r Role) string {
	switch r {
	case RoleAdmin:
		return "admin"
	case RoleAny:
		return "any key"
	}
	return "none"
}

func idemText(i Idem) string {
	switch i {
	case IdemRequired:
		return "required"
	case IdemOwn:
		return "required (kept with the endpoint)"
	}
	return "—"
}

// UnmarshalJSON also reads the boolean schema true ("anything").
func (s *schemaDoc) UnmarshalJSON(b []byte) error {
	if string(b) == "true" {
		*s = schemaDoc{}
		return nil
	}
	type plain schemaDoc
	return json.Unmarshal(b, (*plain)(s))
}
