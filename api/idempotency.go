package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/idempotency"
)

// idempotencyWait bounds how long a retry waits for the first request
// with the same key to finish before it is told 409.
const idempotencyWait = 30 * time.Second

// IdempotencyKey returns the request's Idempotency-Key inside an
// idempotent route, for handlers that also record it on the resource.
func IdempotencyKey(ctx context.Context) string {
	k, _ := ctx.Value(ctxIdemKey).(string)
	return k
}

// answerTx lets the handler of an idempotent route keep its answer in the
// transaction that carries the request out, so the change and its kept
// answer commit together (one fsync, and no window in which the change
// exists but a retry would not find its answer).
type answerTx struct {
	store      *idempotency.Store
	scope, key string
	written    atomic.Bool
}

type ctxAnswerTxKey struct{}

// keepJSONTx encodes v as writeJSON would and writes it, with status, as
// the request's kept answer in tx. It returns the body, which the
// handler must send with writeJSONBody after tx committed. Outside an
// idempotent route it only encodes.
func keepJSONTx(ctx context.Context, tx *sql.Tx, status int, v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode answer: %w", err)
	}
	a, _ := ctx.Value(ctxAnswerTxKey{}).(*answerTx)
	if a == nil || !keep(status) {
		return buf.Bytes(), nil
	}
	err := a.store.CompleteTx(ctx, tx, a.scope, a.key, idempotency.Response{
		Status: status, ContentType: "application/json", Body: buf.Bytes()})
	if err != nil {
		return nil, err
	}
	a.written.Store(true)
	return buf.Bytes(), nil
}

// writeJSONBody sends a body keepJSONTx encoded, as writeJSON does.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// bufferedWriter holds a response until it has been stored.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

// idempotent wraps a creating POST: it requires an Idempotency-Key, runs
// the handler once per key and request, and answers a retry with the
// first response (marked Idempotent-Replayed: true). The same key with a
// different body is 422; a retry while the first still runs waits for it.
//
// Only answers below 400 are kept: those of requests the owner carried
// out. A 4xx is a refusal (bad JSON, validation by the handler or the
// owner, unknown resource, busy terminal, printer refusal) after which
// nothing happened that a retry could repeat, so it writes nothing and a
// retry with the same key runs again (as Stripe does). The owners whose
// duplicates cost money (payments, invoices) record the key on their own
// row as well. Answers of 5xx are not kept either, so a retry after an
// internal failure runs. A new key beyond what one API key may keep
// (idempotency.Store.MaxLive) is 429 IDEMPOTENCY_KEY_LIMIT.
func idempotent(log zerolog.Logger, store *idempotency.Store, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := idempotencyKeyOf(r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		body, err := readBody(w, r)
		if err != nil {
			writeError(w, r, log, err)
			return
		}
		h := sha256.New()
		h.Write([]byte(r.Method + " " + r.URL.Path + "\n"))
		h.Write(body)
		hash := h.Sum(nil)
		scope := keyFrom(r.Context()).ID

		deadline := time.Now().Add(idempotencyWait)
		for {
			resp, err := store.Begin(r.Context(), scope, key, hash)
			switch {
			case errors.Is(err, idempotency.ErrInProgress) && time.Now().Before(deadline):
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			case errors.Is(err, idempotency.ErrInProgress):
				writeError(w, r, log, &Error{Code: CodeIdempotencyBusy, Message: "a request with this Idempotency-Key is still in progress; retry later"})
				return
			case errors.Is(err, idempotency.ErrLimit):
				le := &idempotency.LimitError{Max: store.MaxLive, RetryAfter: time.Minute}
				errors.As(err, &le)
				secs := int(max(le.RetryAfter, time.Second).Round(time.Second) / time.Second)
				w.Header().Set("Retry-After", strconv.Itoa(secs))
				writeError(w, r, log, &Error{Code: CodeIdempotencyLimit,
					Message: fmt.Sprintf("this API key holds %d kept answers, the most it may within %s; a new Idempotency-Key is taken again in %d s",
						le.Max, idempotency.TTL, secs),
					Details: map[string]any{"field": "Idempotency-Key", "retry_after": secs}})
				return
			case errors.Is(err, idempotency.ErrMismatch):
				writeError(w, r, log, &Error{Code: CodeIdempotencyReused, Message: "Idempotency-Key was already used with a different request",
					Details: map[string]any{"field": "Idempotency-Key"}})
				return
			case err != nil:
				writeError(w, r, log, err)
				return
			case resp != nil:
				w.Header().Set("Content-Type", resp.ContentType)
				w.Header().Set("Idempotent-Replayed", "true")
				w.WriteHeader(resp.Status)
				_, _ = w.Write(resp.Body)
				return
			}
			break
		}

		bw := &bufferedWriter{header: w.Header()}
		bg := context.WithoutCancel(r.Context())
		completed := false
		defer func() {
			if !completed {
				if err := store.Release(bg, scope, key); err != nil {
					log.Error().Err(err).Msg("release idempotency key")
				}
			}
		}()
		atx := &answerTx{store: store, scope: scope, key: key}
		ctx := context.WithValue(context.WithValue(r.Context(), ctxIdemKey, key), ctxAnswerTxKey{}, atx)
		next.ServeHTTP(bw, r.WithContext(ctx))
		if bw.status == 0 {
			bw.status = http.StatusOK
		}
		switch {
		case keep(bw.status) && atx.written.Load():
			// Kept in the handler's own transaction, which committed.
			store.Completed(scope, key)
			completed = true
		case keep(bw.status):
			err := store.Complete(bg, scope, key, idempotency.Response{
				Status: bw.status, ContentType: bw.header.Get("Content-Type"), Body: bw.body.Bytes(),
			})
			if err != nil {
				// The resource exists but its answer was not kept; the
				// client must not be told it failed, and a retry would
				// find the resource through its own idempotency record.
				log.Error().Err(err).Msg("store idempotent response")
			}
			completed = err == nil
		}
		w.WriteHeader(bw.status)
		_, _ = w.Write(bw.body.Bytes())
	})
}

// keep reports whether an answer with status is kept for retries: only
// answers of requests that were carried out (see idempotent).
func keep(status int) bool { return status < 400 }

// idempotencyKeyOf reads a request's Idempotency-Key, which must be
// present and 1 to 255 printable ASCII characters.
func idempotencyKeyOf(r *http.Request) (string, error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return "", &Error{Code: CodeIdempotencyMissing, Message: "Idempotency-Key header is required on this route",
			Details: map[string]any{"field": "Idempotency-Key"}}
	}
	if len(key) > 255 || !printable(key) {
		return "", &Error{Code: CodeValidation, Message: "Idempotency-Key: must be 1 to 255 printable ASCII characters",
			Details: map[string]any{"field": "Idempotency-Key"}}
	}
	return key, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
