package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// validate checks every field, naming the first bad one.
func (s *Endpoints) validate(url string, events []string, description, category string, headers, metadata map[string]string, status string) error {
	if _, err := s.sender.CheckURL(url); err != nil {
		return &FieldError{Field: "url", Msg: err.Error(), Err: err}
	}
	for i, e := range events {
		if !slices.Contains(EventTypes, e) {
			return &FieldError{Field: fmt.Sprintf("events[%d]", i), Msg: fmt.Sprintf("unknown event type %q; one of %s", e, strings.Join(EventTypes, ", "))}
		}
		if slices.Contains(events[:i], e) {
			return &FieldError{Field: fmt.Sprintf("events[%d]", i), Msg: fmt.Sprintf("%q is listed twice", e)}
		}
	}
	if len(description) > 500 {
		return &FieldError{Field: "description", Msg: "must be at most 500 bytes"}
	}
	if len(category) > 100 {
		return &FieldError{Field: "category", Msg: "must be at most 100 bytes"}
	}
	if len(headers) > 20 {
		return &FieldError{Field: "headers", Msg: "at most 20 custom headers"}
	}
	for k, v := range headers {
		switch {
		case !isToken(k) || len(k) > 100:
			return &FieldError{Field: "headers." + k, Msg: "not a valid header name"}
		case reserved(k):
			return &FieldError{Field: "headers." + k, Msg: "is set by posgate and cannot be overridden"}
		case len(v) > 1024 || !isFieldValue(v):
			return &FieldError{Field: "headers." + k, Msg: "value must be at most 1024 printable characters"}
		}
	}
	if len(metadata) > 20 {
		return &FieldError{Field: "metadata", Msg: "at most 20 keys"}
	}
	for k, v := range metadata {
		if k == "" || len(k) > 64 || len(v) > 512 {
			return &FieldError{Field: "metadata." + k, Msg: "keys are 1 to 64 bytes, values at most 512"}
		}
	}
	if status != StatusActive && status != StatusDisabled {
		return &FieldError{Field: "status", Msg: `must be "active" or "disabled"`}
	}
	return nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func isFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func aad(id, purpose string) []byte { return []byte("webhook:" + id + ":" + purpose) }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only slices and maps of strings reach here
	}
	return string(b)
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func orEmptyMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// randomText returns n random bytes as unpadded base64url.
func randomText(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("webhook: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
