package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"

	"github.com/posgate/posgate/apikey"
	"github.com/posgate/posgate/logkey"
)

type ctxKey int

const (
	ctxReqInfo ctxKey = iota
	ctxIdemKey
)

// reqInfo is filled in as a request passes the middleware, for the one
// log line written at its end.
type reqInfo struct {
	key *apikey.Key
}

func infoFrom(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(ctxReqInfo).(*reqInfo)
	return ri
}

// keyFrom returns the authenticated API key of the request. Only routes
// behind requireRole have one.
func keyFrom(ctx context.Context) apikey.Key {
	if ri := infoFrom(ctx); ri != nil && ri.key != nil {
		return *ri.key
	}
	return apikey.Key{}
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequestLog writes one line per request: method, route pattern (not
// the raw path, which may carry ids), status, duration and key id. Never
// headers or bodies, which carry secrets.
func withRequestLog(log zerolog.Logger, set *metrics.Set, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ri := &reqInfo{}
		sw := &statusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), ctxReqInfo, ri))
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if set != nil {
			observeRequest(set, route, sw.status, time.Since(start))
		}
		ev := log.Info()
		if sw.status >= 500 {
			ev = log.Warn()
		}
		ev = ev.Str(logkey.Method, r.Method).Str(logkey.Route, route).Int(logkey.Status, sw.status).
			Dur(logkey.Duration, time.Since(start))
		if ri.key != nil {
			ev = ev.Str(logkey.KeyID, ri.key.ID)
		}
		ev.Msg("http request")
	})
}

// withRecover turns a panic in a handler into a 500 JSON error; the stack
// goes to the log only.
func withRecover(log zerolog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			log.Error().Interface("panic", p).Str("stack", string(debug.Stack())).
				Str(logkey.Route, r.Pattern).Msg("handler panicked")
			writeError(w, r, log, &Error{Code: CodeInternal, Message: "internal error; see the posgate log"})
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticator is what requireRole needs from apikey.Keys.
type authenticator interface {
	Authenticate(ctx context.Context, c apikey.Credentials) (apikey.Key, error)
}

// requireRole authenticates the request and checks its key's role: any
// valid key passes role "", only admin keys pass role admin. Every
// failure is the same 401 to the client; the log says which it was.
// Failed authentications are counted by lim per client id and per peer
// address; past its budget a request gets 429 RATE_LIMITED with
// Retry-After before its credentials are looked at (apikey.Limiter says
// why a working till is never locked out).
func requireRole(log zerolog.Logger, keys authenticator, lim *apikey.Limiter, role string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := apikey.Credentials{
			APIKey:    r.Header.Get("X-Api-Key"),
			Timestamp: r.Header.Get("X-Timestamp"),
			Signature: r.Header.Get("X-Signature"),
			Method:    r.Method,
			PathQuery: r.URL.RequestURI(),
		}
		if c.APIKey == "" {
			w.Header().Set("WWW-Authenticate", `ApiKey realm="posgate"`)
			writeError(w, r, log, &Error{Code: CodeUnauthorized, Message: "missing X-Api-Key header"})
			return
		}
		clientID, _, _ := strings.Cut(c.APIKey, ":")
		peer := apikey.PeerKey(r.RemoteAddr)
		if ok, wait := lim.Allow(clientID, peer); !ok {
			secs := max(1, int(wait/time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			// No log line of its own: under attack it would flood the log;
			// the request line says 429.
			writeError(w, r, log, &Error{Code: CodeRateLimited,
				Message: fmt.Sprintf("too many failed authentications from this address or for this client id; retry in %d s", secs),
				Details: map[string]any{"retry_after": secs}})
			return
		}
		if c.Signed() {
			body, err := readBody(w, r)
			if err != nil {
				writeError(w, r, log, err)
				return
			}
			c.Body = body
		}
		key, err := keys.Authenticate(r.Context(), c)
		var sle *apikey.SignedLimitError
		if errors.As(err, &sle) {
			secs := max(1, int(sle.RetryAfter/time.Second))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, r, log, &Error{Code: CodeRateLimited,
				Message: fmt.Sprintf("this API key made more signed requests than the replay window keeps; retry in %d s", secs),
				Details: map[string]any{"retry_after": secs}})
			return
		}
		if err != nil {
			if !isAuthFailure(err) {
				writeError(w, r, log, err)
				return
			}
			if isGuess(err) {
				lim.Failed(clientID, peer)
			}
			log.Info().Err(err).Str(logkey.Route, r.Pattern).Msg("authentication refused")
			w.Header().Set("WWW-Authenticate", `ApiKey realm="posgate"`)
			writeError(w, r, log, &Error{Code: CodeUnauthorized, Message: "invalid or revoked API key, or a bad, stale or replayed signature"})
			return
		}
		lim.Succeeded(clientID, peer)
		if ri := infoFrom(r.Context()); ri != nil {
			ri.key = &key
		}
		if role == apikey.RoleAdmin && key.Role != apikey.RoleAdmin {
			writeError(w, r, log, &Error{Code: CodeForbidden, Message: "this route needs an admin key"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isAuthFailure(err error) bool {
	return isGuess(err) || errors.Is(err, apikey.ErrStale) || errors.Is(err, apikey.ErrReplay)
}

// isGuess reports whether a failure could be someone guessing a key:
// those count against the rate limit. A stale or replayed signature was
// made with the right secret, so it does not.
func isGuess(err error) bool {
	for _, e := range []error{apikey.ErrMalformed, apikey.ErrNotFound, apikey.ErrRevoked, apikey.ErrBadSecret,
		apikey.ErrBadSignature} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
