package webhook

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Custom headers are secrets: receivers put credentials in them
// (Authorization: Bearer …). Their values are sealed under the master key
// (aad = endpoint id + "headers"), like the endpoint secret; the
// headers column keeps only the names with masked values, which is all
// the API ever shows again.

// maskValue hides a header value: an auth scheme word stays readable
// ("Bearer ****"), everything else becomes "****". It is idempotent, so a
// masked value masks to itself.
func maskValue(v string) string {
	if i := strings.IndexByte(v, ' '); i > 0 && i <= 20 && isAlpha(v[:i]) && strings.TrimSpace(v[i:]) != "" {
		return v[:i] + " ****"
	}
	return "****"
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func maskHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[k] = maskValue(v)
	}
	return out
}

// normalName is how receivers may read a header name: case folded, and
// underscores taken for dashes (CGI, PHP, Django, Rails and nginx's
// underscores_in_headers all map X_Webhook_Signature onto
// X-Webhook-Signature).
func normalName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

// reserved reports whether a custom header name is, or may be read as,
// one the sender sets itself: the signature headers, and those that frame
// or route the request.
func reserved(name string) bool {
	n := normalName(name)
	if strings.HasPrefix(n, "webhook-") || strings.HasPrefix(n, "x-webhook-") {
		return true
	}
	switch n {
	case "host", "content-type", "content-length", "content-encoding", "transfer-encoding", "connection",
		"keep-alive", "te", "trailer", "upgrade", "expect", "proxy-connection", "proxy-authorization",
		"user-agent", "forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip":
		return true
	}
	return false
}

// validateHeaders checks custom headers: RFC 9110 token names, none that
// is or reads as a reserved header, no two names that read the same, and
// field values of printable characters.
func validateHeaders(headers map[string]string) error {
	if len(headers) > 20 {
		return &FieldError{Field: "headers", Msg: "at most 20 custom headers"}
	}
	seen := make(map[string]string, len(headers))
	for k, v := range headers {
		switch {
		case !isToken(k) || len(k) > 100:
			return &FieldError{Field: "headers." + k, Msg: "not a valid header name (RFC 9110 token, at most 100 characters)"}
		case reserved(k):
			return &FieldError{Field: "headers." + k, Msg: "is, or reads as, a header posgate sets itself and cannot be overridden"}
		case len(v) > 1024 || !isFieldValue(v):
			return &FieldError{Field: "headers." + k, Msg: "value must be at most 1024 printable characters"}
		}
		n := normalName(k)
		if other, dup := seen[n]; dup {
			return &FieldError{Field: "headers." + k, Msg: fmt.Sprintf("reads as the same header as %q", other)}
		}
		seen[n] = k
	}
	return nil
}

// isToken reports whether s is an RFC 9110 §5.6.2 token (a field name).
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

// isFieldValue reports whether s holds no control character (RFC 9110
// §5.5: visible characters, space, tab and obs-text).
func isFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// sealHeaders seals h for endpoint id.
func (s *Endpoints) sealHeaders(id string, h map[string]string) []byte {
	return s.master.Seal([]byte(mustJSON(orEmptyMap(h))), aad(id, "headers"))
}

// openHeaders opens an endpoint's custom headers. A row sealed before
// this build knew about sealing (sealed == nil) still holds them in
// plain; SealStoredHeaders seals those at start.
func (s *Endpoints) openHeaders(id string, sealed []byte, plain string) (map[string]string, error) {
	raw := []byte(plain)
	if sealed != nil {
		var err error
		if raw, err = s.master.Open(sealed, aad(id, "headers")); err != nil {
			return nil, fmt.Errorf("open headers of %s: %w", id, err)
		}
	}
	h := map[string]string{}
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("decode headers of %s: %w", id, err)
	}
	return h, nil
}

// keepMasked returns next with every value that equals the mask of the
// stored value of the same header replaced by the stored value, so an
// admin can send back an endpoint as GET showed it without overwriting
// its credentials with "****".
func keepMasked(next, stored map[string]string) map[string]string {
	out := make(map[string]string, len(next))
	for k, v := range next {
		out[k] = v
		if old, ok := stored[k]; ok && strings.Contains(v, "****") && v == maskValue(old) {
			out[k] = old
		}
	}
	return out
}
