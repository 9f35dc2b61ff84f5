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
	if err := validateHeaders(headers); err != nil {
		return err
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

// validateType checks the destination: an https (or allowed http) URL for
// a webhook, a broker address and its configuration for nats, amqp and
// kafka. A configuration for another type than the endpoint's is refused
// by name.
func (s *Endpoints) validateType(typ, url string, d dest) error {
	for _, c := range []struct {
		typ string
		set bool
	}{{TypeNATS, d.NATS != nil}, {TypeAMQP, d.AMQP != nil}, {TypeKafka, d.Kafka != nil}} {
		if c.set && c.typ != typ && (typ == TypeWebhook || typ == TypeNATS || typ == TypeAMQP || typ == TypeKafka) {
			return &FieldError{Field: c.typ, Msg: fmt.Sprintf("only for type %q", c.typ)}
		}
	}
	switch typ {
	case TypeWebhook:
		if _, err := s.sender.CheckURL(url); err != nil {
			return &FieldError{Field: "url", Msg: err.Error(), Err: err}
		}
		return nil
	case TypeNATS:
		return s.sender.validateNATS(url, d.NATS)
	case TypeAMQP:
		return s.sender.validateAMQP(url, d.AMQP)
	case TypeKafka:
		return s.sender.validateKafka(url, d.Kafka)
	}
	return &FieldError{Field: "type", Msg: `must be "webhook", "nats", "amqp" or "kafka"`}
}
