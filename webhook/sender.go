package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Error classes recorded with each attempt.
const (
	ClassTimeout  = "timeout"  // no answer within the attempt's timeout
	ClassDNS      = "dns"      // the host name did not resolve
	ClassConnect  = "connect"  // no TCP connection (refused, unreachable)
	ClassTLS      = "tls"      // handshake or certificate failure
	ClassBlocked  = "blocked"  // the address policy refused the target
	ClassRedirect = "redirect" // a 3xx, which is never followed
	ClassHTTP     = "http"     // any other non-2xx status
	ClassIO       = "io"       // the connection broke mid-exchange
	ClassCanceled = "canceled" // the relay was stopping
)

// SnippetSize is how much of a response body an attempt keeps.
const SnippetSize = 4 << 10

// drainSize bounds how much more of a response is read so the connection
// can be reused; a larger body costs a new connection instead.
const drainSize = 64 << 10

// Errors of URL validation.
var (
	ErrHTTPNotAllowed = errors.New("url must use https (plain http needs webhooks.allow_http)")
	ErrBadURL         = errors.New("url must be an absolute http(s) URL with a host and no user info")
)

// SenderOptions configure a Sender. The zero value is production's
// default: https only, public addresses only, 10 s per attempt.
type SenderOptions struct {
	// AllowHTTP permits plain http:// URLs (webhooks.allow_http).
	AllowHTTP bool
	// AllowPrivate permits loopback, private and link-local targets
	// (webhooks.allow_private).
	AllowPrivate bool
	// Timeout bounds one attempt, connect to last byte read. Default 10 s.
	// It bounds the wait, as any Go timer does: on a loaded machine it
	// may fire late, and an answer that came first is the answer (a 2xx
	// delivers, with its real duration recorded), never thrown away for
	// a redelivery the receiver would see twice.
	Timeout time.Duration
	// Resolver resolves host names at dial time. Default net.DefaultResolver.
	Resolver Resolver
	// TLSConfig, if set, is used for https (tests trust their own CA).
	TLSConfig *tls.Config
	// MaxConnsPerHost caps connections to one host. Default 32.
	MaxConnsPerHost int
	// UserAgent is sent with every request. Default "posgate-webhook/1".
	UserAgent string
}

// Sender posts signed webhook requests. It never follows redirects and its
// dialer enforces the address policy on every connection. It is safe for
// concurrent use and keeps connections alive per host.
type Sender struct {
	opts   SenderOptions
	dialer *Dialer
	// tr sends every webhook request. Requests go to it directly, not
	// through an http.Client: a client adds nothing a webhook uses
	// (redirects are never followed, there is no cookie jar, the
	// attempt's timeout is its context) and costs a copy of the headers
	// and the URL per request.
	tr *http.Transport
	// userAgent is the User-Agent header's value, shared by every
	// request (the transport only reads it).
	userAgent []string
	nats      *natsConns
	amqp      *amqpConns
	kafka     *kafkaClients
}

// NewSender returns a Sender with opts' defaults filled in.
func NewSender(opts SenderOptions) *Sender {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MaxConnsPerHost <= 0 {
		opts.MaxConnsPerHost = 32
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "posgate-webhook/1"
	}
	d := &Dialer{AllowPrivate: opts.AllowPrivate, Resolver: opts.Resolver, Timeout: min(opts.Timeout, 5*time.Second)}
	tr := &http.Transport{
		// Never an environment proxy: it would dial on our behalf and
		// bypass the address policy.
		Proxy:               nil,
		DialContext:         d.DialContext,
		TLSClientConfig:     opts.TLSConfig,
		TLSHandshakeTimeout: min(opts.Timeout, 5*time.Second),
		ForceAttemptHTTP2:   true,
		// No "Accept-Encoding: gzip" on every request: the relay keeps
		// at most SnippetSize bytes of a response, which receivers
		// seldom compress, and the header is one more for every
		// receiver to parse (with the five signature headers it pushed
		// Go's header map past its small size: BenchmarkDelivery).
		DisableCompression:    true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   opts.MaxConnsPerHost,
		MaxConnsPerHost:       opts.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &Sender{
		opts:   opts,
		dialer: d,
		nats:   &natsConns{},
		amqp:   &amqpConns{},
		kafka:  &kafkaClients{},
		tr:     tr,

		userAgent: []string{opts.UserAgent},
	}
}

// Options returns the sender's options with defaults filled in.
func (s *Sender) Options() SenderOptions { return s.opts }

// CloseIdleConnections closes kept-alive connections nobody is using, and
// every broker connection (the next publish connects again).
func (s *Sender) CloseIdleConnections() {
	s.tr.CloseIdleConnections()
	s.closeNATS()
	s.closeAMQP()
	s.closeKafka()
}

// drop closes endpoint id's broker connection, if any.
func (s *Sender) drop(id string) {
	s.dropNATS(id)
	s.dropAMQP(id)
	s.dropKafka(id)
}

// Dialer returns the policy dialer the sender connects through.
func (s *Sender) Dialer() *Dialer { return s.dialer }

// CheckURL validates an endpoint URL against the scheme policy. Address
// policy is enforced later, when the connection is dialled.
func (s *Sender) CheckURL(raw string) (*url.URL, error) {
	u, err := parseURL(raw)
	if err != nil {
		return nil, err
	}
	if err := s.checkScheme(u); err != nil {
		return nil, err
	}
	return u, nil
}

// parseURL parses an endpoint URL and checks its shape: absolute, with a
// host, no user info, opaque part or fragment. The scheme is checkScheme's.
func parseURL(raw string) (*url.URL, error) {
	if len(raw) > 2048 {
		return nil, ErrBadURL
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return nil, ErrBadURL
	}
	return u, nil
}

// checkScheme is the one scheme policy, used when an endpoint is saved
// and before every attempt. Schemes are case-insensitive (RFC 3986 §3.1):
// url.Parse folds "HTTPS" to "https", and the check reads only the
// parsed scheme, never the raw text.
func (s *Sender) checkScheme(u *url.URL) error {
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if !s.opts.AllowHTTP {
			return ErrHTTPNotAllowed
		}
		return nil
	}
	return ErrBadURL
}

// Message is one request to send.
type Message struct {
	// ID is the entry_id, sent as webhook-id.
	ID string
	// Body is the exact bytes sent and signed.
	Body []byte
	// Time is the signing timestamp; fresh for every attempt.
	Time time.Time
}

// Result is the outcome of one attempt.
type Result struct {
	Status   int           // 0 when there was no response
	Duration time.Duration // request start to body read
	Class    string        // "" on success, else one of the Class constants
	Err      string        // human text; "" on success
	Snippet  []byte        // at most SnippetSize bytes of the response body
	// RetryAfter is the response's Retry-After, 0 when absent.
	RetryAfter time.Duration
	// Network is true when the failure was resolving or connecting: the
	// evidence the relay uses to tell "the store is offline" from "the
	// endpoint fails".
	Network bool
}

// OK reports a 2xx.
func (r Result) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Send posts m to t once, with t's custom headers under the signature
// headers, and classifies the outcome. It never returns an error: every
// failure is a Result to record.
func (s *Sender) Send(ctx context.Context, t Target, m Message) Result {
	switch t.Type {
	case TypeNATS:
		return s.sendNATS(ctx, t, m)
	case TypeAMQP:
		return s.sendAMQP(ctx, t, m)
	case TypeKafka:
		return s.sendKafka(ctx, t, m)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	return s.post(ctx, t, m, start)
}

// isBroker reports whether t is published to a broker, not posted.
func isBroker(t *Target) bool {
	return t.Type == TypeNATS || t.Type == TypeAMQP || t.Type == TypeKafka
}

// post is Send's HTTP request to t's URL, under ctx, which bounds it.
func (s *Sender) post(ctx context.Context, t Target, m Message, start time.Time) Result {
	// The URL was validated when saved (and parsed when the target was
	// loaded); the scheme policy is checked again by the same function
	// (allow_http may have been turned off since). The address policy
	// runs in the dialer.
	u, err := t.parsedURL()
	if err == nil {
		err = s.checkScheme(u)
	}
	if err != nil {
		return Result{Class: ClassBlocked, Err: err.Error(), Duration: time.Since(start)}
	}
	h := make(http.Header, 7+len(t.Headers))
	for k, v := range t.Headers {
		if !reserved(k) { // refused when saved; a row from an older build may still hold one
			h.Set(k, v)
		}
	}
	h["Content-Type"] = contentJSON
	h["User-Agent"] = s.userAgent
	Sign(h, m.ID, m.Time, m.Body, t.Keys)
	req := newPost(ctx, u, h, m.Body)

	resp, err := s.tr.RoundTrip(req)
	if err != nil {
		// As http.Client words it: plain HTTP from an https:// URL.
		if re, ok := err.(tls.RecordHeaderError); ok && string(re.RecordHeader[:]) == "HTTP/" {
			err = http.ErrSchemeMismatch
		}
		r := classify(ctx, err)
		r.Duration = time.Since(start)
		return r
	}
	defer resp.Body.Close()
	buf := snippetPool.Get().(*[SnippetSize]byte)
	n, rerr := io.ReadFull(resp.Body, buf[:])
	var snippet []byte
	if n > 0 {
		snippet = bytes.Clone(buf[:n])
	}
	// Read up to drainSize more into the same buffer so the connection
	// can be reused.
	for drained := 0; rerr == nil && drained < drainSize; drained += n {
		n, rerr = resp.Body.Read(buf[:])
	}
	snippetPool.Put(buf)
	r := Result{Status: resp.StatusCode, Snippet: snippet, Duration: time.Since(start)}
	switch {
	case r.OK():
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.Class = ClassRedirect
		r.Err = fmt.Sprintf("HTTP %d redirect to %q, not followed", resp.StatusCode, resp.Header.Get("Location"))
	default:
		r.Class = ClassHTTP
		r.Err = fmt.Sprintf("HTTP %d", resp.StatusCode)
		r.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return r
}

// newPost returns a POST of body to u under ctx, as
// http.NewRequestWithContext would build it from u's text, without
// parsing the URL again for every request.
func newPost(ctx context.Context, u *url.URL, h http.Header, body []byte) *http.Request {
	req := &http.Request{
		Method:     http.MethodPost,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		// A NopCloser over a *bytes.Reader, exactly: the transport knows
		// that kind of body is in memory and writes it with the headers
		// in one write; any other type costs a second write (and a
		// second read at the receiver) per request.
		Body: io.NopCloser(bytes.NewReader(body)),
		// The transport sends the body again on a fresh connection when
		// it may (HTTP/2 after a GOAWAY), as NewRequest allows.
		GetBody:       func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil },
		ContentLength: int64(len(body)),
		Host:          strings.TrimSuffix(u.Host, ":"), // an empty port, as NewRequest drops it
	}
	return req.WithContext(ctx)
}

var (
	contentJSON = []string{"application/json"}
	snippetPool = sync.Pool{New: func() any { return new([SnippetSize]byte) }}
)

// classify turns a client error into a Result.
func classify(ctx context.Context, err error) Result {
	var (
		be *BlockedError
		de *DialError
		ce *tls.CertificateVerificationError
		he x509.HostnameError
		ue x509.UnknownAuthorityError
		re tls.RecordHeaderError
	)
	r := Result{Err: err.Error()}
	if uerr, ok := err.(*url.Error); ok {
		r.Err = uerr.Err.Error()
	}
	switch {
	case errors.As(err, &be):
		r.Class, r.Err = ClassBlocked, be.Error()
	case errors.As(err, &de):
		r.Class, r.Network = ClassConnect, true
		if de.DNS {
			r.Class = ClassDNS
		}
	case errors.As(err, &ce), errors.As(err, &he), errors.As(err, &ue), errors.As(err, &re),
		strings.Contains(err.Error(), "tls: "):
		r.Class = ClassTLS
	case errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled:
		r.Class = ClassCanceled
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		r.Class = ClassTimeout
	default:
		r.Class = ClassIO
	}
	return r
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// parseRetryAfter reads delta-seconds or an HTTP date; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, 1<<30)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
