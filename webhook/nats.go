package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Destination types.
const (
	TypeWebhook = "webhook" // an HTTPS POST (DESIGN §6)
	TypeNATS    = "nats"    // a NATS JetStream publish (issue 18)
	TypeAMQP    = "amqp"    // a RabbitMQ publish with confirms (issue 18)
	TypeKafka   = "kafka"   // a Kafka produce, idempotent producer (issue 18)
)

// NATSConfig is where a "nats" endpoint publishes. Password and Token
// are sealed like the endpoint secret and shown masked.
type NATSConfig struct {
	// Subject is published to; a JetStream stream must capture it.
	Subject string `json:"subject"`
	// Stream, if set, is the stream expected to capture Subject: the
	// validation ping fails if the ack names another.
	Stream   string `json:"stream,omitempty"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
	// CAPEM holds extra PEM roots to trust for tls:// servers.
	CAPEM string `json:"ca_pem,omitempty"`
}

var natsSubject = regexp.MustCompile(`^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$`)

// validateNATS checks a nats endpoint's URL and configuration. nats://
// is plaintext, allowed under the same switch as http:// (allow_http);
// tls:// is always allowed.
func (s *Sender) validateNATS(raw string, c *NATSConfig) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.Port() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return &FieldError{Field: "url", Msg: "a nats endpoint's url is nats://host:port or tls://host:port"}
	}
	switch strings.ToLower(u.Scheme) {
	case "tls":
	case "nats":
		if !s.opts.AllowHTTP {
			return &FieldError{Field: "url", Msg: "url must use tls:// (plain nats:// needs webhooks.allow_http)", Err: ErrHTTPNotAllowed}
		}
	default:
		return &FieldError{Field: "url", Msg: "a nats endpoint's url is nats://host:port or tls://host:port", Err: ErrBadURL}
	}
	switch {
	case c == nil:
		return &FieldError{Field: "nats", Msg: "is required for type nats"}
	case len(c.Subject) > 255 || !natsSubject.MatchString(c.Subject):
		return &FieldError{Field: "nats.subject", Msg: "a subject of dot-separated tokens of A-Z a-z 0-9 _ -, no wildcards, at most 255 characters"}
	case c.Stream != "" && !nameOK(c.Stream, 1, 64, "_-"): // a JetStream stream name
		return &FieldError{Field: "nats.stream", Msg: "1 to 64 of A-Z a-z 0-9 _ -"}
	case len(c.User) > 256 || len(c.Password) > 1024 || len(c.Token) > 4096 || !isFieldValue(c.User) || !isFieldValue(c.Password) || !isFieldValue(c.Token):
		return &FieldError{Field: "nats", Msg: "user, password and token must be printable and at most 256, 1024 and 4096 bytes"}
	case c.Token != "" && (c.User != "" || c.Password != ""):
		return &FieldError{Field: "nats.token", Msg: "use either a token or a user and password"}
	}
	return checkCAPEM("nats.ca_pem", c.CAPEM)
}

// maskNATS returns c as the API shows it: credentials masked.
func maskNATS(c *NATSConfig) *NATSConfig {
	if c == nil {
		return nil
	}
	m := *c
	if m.Password != "" {
		m.Password = "****"
	}
	if m.Token != "" {
		m.Token = "****"
	}
	return &m
}

// keepMaskedNATS keeps the stored credentials where next sends them back
// masked.
func keepMaskedNATS(next, stored *NATSConfig) *NATSConfig {
	if next == nil || stored == nil {
		return next
	}
	n := *next
	// A view shows whichever credential is set as password "****".
	if n.Password == "****" || n.Token == "****" {
		if n.Token == "" || n.Token == "****" {
			n.Token = stored.Token
		}
		if n.Password == "****" {
			n.Password = stored.Password
		}
	}
	return &n
}

// natsConns keeps one connection per nats endpoint and configuration;
// nats.go reconnects it by itself.
type natsConns struct {
	mu    sync.Mutex
	conns map[string]*natsConn // by endpoint id
}

type natsConn struct {
	key string // the configuration it was made for
	nc  *nats.Conn
	js  jetstream.JetStream
}

// policyDialer adapts the address-policy Dialer to nats.CustomDialer.
type policyDialer struct {
	d       *Dialer
	timeout time.Duration
}

func (p policyDialer) Dial(network, address string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	return p.d.DialContext(ctx, network, address)
}

// conn returns t's connection, connecting if there is none or its
// configuration changed.
func (s *Sender) natsConn(t Target) (*natsConn, error) {
	sum := sha256.Sum256([]byte(t.URL + "\x00" + t.NATS.User + "\x00" + t.NATS.Password + "\x00" + t.NATS.Token + "\x00" + t.NATS.CAPEM))
	key := string(sum[:])
	p := s.nats
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[t.ID]; c != nil {
		if c.key == key && !c.nc.IsClosed() {
			return c, nil
		}
		c.nc.Close()
		delete(p.conns, t.ID)
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, err
	}
	timeout := min(s.opts.Timeout, 5*time.Second)
	opts := []nats.Option{
		nats.Name("posgate"),
		nats.SetCustomDialer(policyDialer{d: s.dialer, timeout: timeout}),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		// While reconnecting, a publish fails at once instead of waiting
		// in a buffer: the relay records it and retries on its schedule
		// (or, offline, probes without spending attempts).
		nats.ReconnectBufSize(-1),
		nats.NoCallbacksAfterClientClose(),
	}
	if strings.EqualFold(u.Scheme, "tls") {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
		if s.opts.TLSConfig != nil {
			cfg = s.opts.TLSConfig.Clone()
		}
		if t.NATS.CAPEM != "" {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			pool.AppendCertsFromPEM([]byte(t.NATS.CAPEM))
			cfg.RootCAs = pool
		}
		opts = append(opts, nats.Secure(cfg))
	}
	switch {
	case t.NATS.Token != "":
		opts = append(opts, nats.Token(t.NATS.Token))
	case t.NATS.User != "":
		opts = append(opts, nats.UserInfo(t.NATS.User, t.NATS.Password))
	}
	// nats.go takes nats:// for both; TLS is switched on by nats.Secure.
	nc, err := nats.Connect("nats://"+u.Host, opts...)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &natsConn{key: key, nc: nc, js: js}
	if p.conns == nil {
		p.conns = map[string]*natsConn{}
	}
	p.conns[t.ID] = c
	return c, nil
}

// dropNATS closes endpoint id's NATS connection, if any.
func (s *Sender) dropNATS(id string) {
	s.nats.mu.Lock()
	defer s.nats.mu.Unlock()
	if c := s.nats.conns[id]; c != nil {
		c.nc.Close()
		delete(s.nats.conns, id)
	}
}

// closeNATS closes every NATS connection.
func (s *Sender) closeNATS() {
	s.nats.mu.Lock()
	defer s.nats.mu.Unlock()
	for id, c := range s.nats.conns {
		c.nc.Close()
		delete(s.nats.conns, id)
	}
}

// sendNATS publishes m to t's subject and waits for JetStream's ack. The
// message id is the entry_id (Nats-Msg-Id), so JetStream drops a re-sent
// duplicate within the stream's duplicate window; the body and the
// signature headers are the webhook's, so a consumer can verify them.
func (s *Sender) sendNATS(ctx context.Context, t Target, m Message) Result {
	start := time.Now()
	if t.NATS == nil {
		return Result{Class: ClassBlocked, Err: "nats endpoint without a configuration"}
	}
	c, err := s.natsConn(t)
	if err != nil {
		r := classifyNATS(ctx, err)
		r.Duration = time.Since(start)
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	msg := nats.NewMsg(t.NATS.Subject)
	msg.Data = m.Body
	for k, v := range t.Headers {
		if !reserved(k) {
			msg.Header.Set(k, v)
		}
	}
	msg.Header.Set("Content-Type", "application/json")
	Sign(http.Header(msg.Header), m.ID, m.Time, m.Body, t.Keys)
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(m.ID)}
	if t.NATS.Stream != "" {
		opts = append(opts, jetstream.WithExpectStream(t.NATS.Stream))
	}
	ack, err := c.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		r := classifyNATS(ctx, err)
		r.Duration = time.Since(start)
		return r
	}
	// 200 stands for "stored" (or recognised as a duplicate) in the
	// attempt log, which speaks HTTP status codes.
	snippet := fmt.Sprintf(`{"stream":%q,"seq":%d,"duplicate":%t}`, ack.Stream, ack.Sequence, ack.Duplicate)
	return Result{Status: 200, Duration: time.Since(start), Snippet: []byte(snippet)}
}

// classifyNATS turns a NATS error into a Result. Failing to reach the
// server is a network failure (offline evidence, like a refused TCP
// connect); a server that answers but does not store is an endpoint
// failure.
func classifyNATS(ctx context.Context, err error) Result {
	r := Result{Err: err.Error()}
	var be *BlockedError
	switch {
	case errors.As(err, &be):
		r.Class, r.Err = ClassBlocked, be.Error()
	case errors.Is(err, nats.ErrNoServers), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrReconnectBufExceeded),
		errors.Is(err, nats.ErrDisconnected):
		r.Class, r.Network = ClassConnect, true
		var de *DialError
		if errors.As(err, &de) && de.DNS {
			r.Class = ClassDNS
		}
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		r.Class = ClassHTTP
		r.Status = 401
	case errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled:
		r.Class = ClassCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), isTimeout(err):
		r.Class = ClassTimeout
	case strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "x509:"):
		r.Class = ClassTLS
	default:
		// No stream captures the subject, the stream refused the
		// message, a wrong expected stream: the broker answered, and
		// said no.
		r.Class = ClassHTTP
	}
	return r
}
