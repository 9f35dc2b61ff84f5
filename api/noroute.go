package api

import (
	"net/http"
	"path"
	"strings"
)

// withCanonicalPaths answers, in the JSON envelope, the requests for which
// http.ServeMux would write its own text/html redirect: a path that is
// not in canonical form (//v1/payments, /v1/./x, /v1/../v1/x) and a
// subtree root without its slash (/v1). Following such a redirect would
// re-send a POST to another path than the one a signature covers, so
// posgate does not redirect: the answer is 404 NOT_FOUND naming the
// canonical path.
func withCanonicalPaths(d Deps, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		canonical := cleanPath(p)
		if r.Method == http.MethodConnect {
			canonical = p // the mux does not clean CONNECT paths either
		}
		if canonical == p {
			if _, pattern := mux.Handler(r); strings.HasSuffix(pattern, "/") && patternPath(pattern) == p+"/" {
				canonical = p + "/"
			}
		}
		if canonical != p {
			writeError(w, r, d.Log, &Error{Code: CodeNotFound,
				Message: "no such route: " + r.Method + " " + p + "; posgate does not redirect, the canonical path is " + canonical,
				Details: map[string]any{"canonical_path": canonical}})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// handleNoRoute answers a request no route matched: 405 with Allow when
// the path has routes for other methods, else 404, both as JSON (the
// catch-all patterns "/" and "/v1/" otherwise hide the mux's own 405).
func handleNoRoute(d Deps, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if m == r.Method {
				continue
			}
			probe := r.WithContext(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && !isCatchAll(pattern) {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, r, d.Log, &Error{Code: CodeMethodNotAllowed,
				Message: r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + strings.Join(allowed, ", "),
				Details: map[string]any{"allowed": allowed}})
			return
		}
		writeError(w, r, d.Log, &Error{Code: CodeNotFound, Message: "no such route: " + r.Method + " " + r.URL.Path})
	})
}

// isCatchAll reports whether pattern is one of the catch-alls routes.go
// registers last.
func isCatchAll(pattern string) bool { return pattern == "/" || pattern == "/v1/" }

// patternPath is a mux pattern without its method ("GET /v1/" → "/v1/").
func patternPath(pattern string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		return p
	}
	return pattern
}

// cleanPath is the canonical form http.ServeMux redirects to: path.Clean,
// keeping a trailing slash, rooted.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
