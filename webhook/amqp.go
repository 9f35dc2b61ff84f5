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
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// AMQPConfig is where an "amqp" endpoint publishes (RabbitMQ, AMQP
// 0-9-1). The endpoint's url is amqps://host[:port][/vhost] (amqp://
// under allow_http); Password is sealed like the endpoint secret and
// shown masked.
type AMQPConfig struct {
	// Exchange is published to; "" is the default exchange, which routes
	// by queue name.
	Exchange string `json:"exchange"`
	// RoutingKey is every message's routing key.
	RoutingKey string `json:"routing_key"`
	User       string `json:"user,omitempty"`
	Password   string `json:"password,omitempty"`
	// CAPEM holds extra PEM roots to trust for amqps:// servers.
	CAPEM string `json:"ca_pem,omitempty"`
}

// amqpExchange is what RabbitMQ accepts as an exchange name (AMQP 0-9-1
// §1.2 exchange-name: up to 127 of letters, digits, - _ . :).
func amqpExchange(s string) bool { return nameOK(s, 0, 127, "_-.:") }

// validateAMQP checks an amqp endpoint's URL and configuration. amqp://
// is plaintext, allowed under the same switch as http:// (allow_http).
// Credentials never go in the URL, which is stored and shown as it is.
func (s *Sender) validateAMQP(raw string, c *AMQPConfig) error {
	const shape = "an amqp endpoint's url is amqps://host[:port][/vhost], credentials in amqp.user and amqp.password"
	u, err := url.Parse(raw)
	if err != nil || len(raw) > 2048 || u.Host == "" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return &FieldError{Field: "url", Msg: shape, Err: ErrBadURL}
	}
	switch strings.ToLower(u.Scheme) {
	case "amqps":
	case "amqp":
		if !s.opts.AllowHTTP {
			return &FieldError{Field: "url", Msg: "url must use amqps:// (plain amqp:// needs webhooks.allow_http)", Err: ErrHTTPNotAllowed}
		}
	default:
		return &FieldError{Field: "url", Msg: shape, Err: ErrBadURL}
	}
	if _, err := amqp.ParseURI(raw); err != nil {
		return &FieldError{Field: "url", Msg: shape + ": " + err.Error(), Err: ErrBadURL}
	}
	switch {
	case c == nil:
		return &FieldError{Field: "amqp", Msg: "is required for type amqp"}
	case !amqpExchange(c.Exchange):
		return &FieldError{Field: "amqp.exchange", Msg: "at most 127 of A-Z a-z 0-9 - _ . :"}
	case len(c.RoutingKey) > 255 || !isFieldValue(c.RoutingKey):
		return &FieldError{Field: "amqp.routing_key", Msg: "printable, at most 255 bytes"}
	case c.Exchange == "" && c.RoutingKey == "":
		return &FieldError{Field: "amqp.routing_key", Msg: "is required with the default exchange (it names the queue)"}
	case !credentialsOK(c.User, c.Password):
		return &FieldError{Field: "amqp", Msg: credentialsMsg}
	case c.Password != "" && c.User == "":
		return &FieldError{Field: "amqp.user", Msg: "is required with a password"}
	}
	return checkCAPEM("amqp.ca_pem", c.CAPEM)
}

// amqpConns keeps one connection per amqp endpoint and configuration,
// and on it a pool of confirm-mode channels, each carrying one publish
// at a time: a returned (unroutable) message then belongs to the only
// publish in flight on its channel.
type amqpConns struct {
	mu    sync.Mutex
	conns map[string]*amqpConn // by endpoint id
}

type amqpConn struct {
	key  string
	conn *amqp.Connection
	mu   sync.Mutex
	idle []*amqpChan
}

type amqpChan struct {
	ch      *amqp.Channel
	returns chan amqp.Return
	closed  chan *amqp.Error
}

// maxIdleAMQPChannels bounds the pool; more publishes at once open more
// channels and close the extra ones after use.
const maxIdleAMQPChannels = 16

// amqpConn returns t's connection, dialling if there is none, it closed
// (a broker restart) or its configuration changed.
func (s *Sender) amqpConn(t Target) (*amqpConn, error) {
	sum := sha256.Sum256([]byte(t.URL + "\x00" + t.AMQP.User + "\x00" + t.AMQP.Password + "\x00" + t.AMQP.CAPEM))
	key := string(sum[:])
	p := s.amqp
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.conns[t.ID]; c != nil {
		if c.key == key && !c.conn.IsClosed() {
			return c, nil
		}
		_ = c.conn.Close()
		delete(p.conns, t.ID)
	}
	u, err := amqp.ParseURI(t.URL)
	if err != nil {
		return nil, err
	}
	timeout := min(s.opts.Timeout, 5*time.Second)
	cfg := amqp.Config{
		Heartbeat: 10 * time.Second,
		Locale:    "en_US",
		Vhost:     u.Vhost,
		// The policy dialer decides every address; the deadline bounds
		// the TLS and AMQP handshakes (amqp091 clears it once open).
		Dial: func(network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			c, err := s.dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			_ = c.SetDeadline(time.Now().Add(timeout))
			return c, nil
		},
		Properties: amqp.Table{"product": "posgate", "connection_name": "posgate " + t.ID},
	}
	if t.AMQP.User != "" {
		cfg.SASL = []amqp.Authentication{&amqp.PlainAuth{Username: t.AMQP.User, Password: t.AMQP.Password}}
	} else {
		// No credentials configured: not amqp091's guest/guest default.
		cfg.SASL = []amqp.Authentication{&amqp.PlainAuth{}}
	}
	if strings.EqualFold(u.Scheme, "amqps") {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Host}
		if s.opts.TLSConfig != nil {
			tc = s.opts.TLSConfig.Clone()
			tc.ServerName = u.Host
		}
		if t.AMQP.CAPEM != "" {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			pool.AppendCertsFromPEM([]byte(t.AMQP.CAPEM))
			tc.RootCAs = pool
		}
		cfg.TLSClientConfig = tc
	}
	// The URL carries no credentials (validateAMQP); they come from cfg.
	conn, err := amqp.DialConfig(t.URL, cfg)
	if err != nil {
		return nil, err
	}
	c := &amqpConn{key: key, conn: conn}
	if p.conns == nil {
		p.conns = map[string]*amqpConn{}
	}
	p.conns[t.ID] = c
	return c, nil
}

// take returns an idle channel or opens one in confirm mode.
func (c *amqpConn) take() (*amqpChan, error) {
	c.mu.Lock()
	for len(c.idle) > 0 {
		ch := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if !ch.ch.IsClosed() {
			c.mu.Unlock()
			return ch, nil
		}
	}
	c.mu.Unlock()
	ch, err := c.conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, err
	}
	return &amqpChan{
		ch: ch,
		// Buffered: the library hands a basic.return over before it
		// processes the basic.ack that follows it (AMQP 0-9-1 §1.8.3.9
		// and RabbitMQ's confirms: a returned mandatory message is acked
		// after the return), so once the ack is seen the return, if any,
		// is already waiting here.
		returns: ch.NotifyReturn(make(chan amqp.Return, 1)),
		closed:  ch.NotifyClose(make(chan *amqp.Error, 1)),
	}, nil
}

// put gives a channel with nothing in flight back to the pool.
func (c *amqpConn) put(ch *amqpChan) {
	c.mu.Lock()
	if len(c.idle) < maxIdleAMQPChannels && !ch.ch.IsClosed() {
		c.idle = append(c.idle, ch)
		ch = nil
	}
	c.mu.Unlock()
	if ch != nil {
		_ = ch.ch.Close()
	}
}

// dropAMQP closes endpoint id's AMQP connection, if any.
func (s *Sender) dropAMQP(id string) {
	s.amqp.mu.Lock()
	defer s.amqp.mu.Unlock()
	if c := s.amqp.conns[id]; c != nil {
		_ = c.conn.Close()
		delete(s.amqp.conns, id)
	}
}

// closeAMQP closes every AMQP connection.
func (s *Sender) closeAMQP() {
	s.amqp.mu.Lock()
	defer s.amqp.mu.Unlock()
	for id, c := range s.amqp.conns {
		_ = c.conn.Close()
		delete(s.amqp.conns, id)
	}
}

// sendAMQP publishes m to t's exchange with t's routing key and waits for
// the broker's confirm. The message is persistent (delivery mode 2) and
// mandatory (an unroutable message is returned, a failed attempt, rather
// than dropped); its message_id is the entry_id, so a consumer can drop
// the re-sends of at-least-once delivery; the body and the signature
// headers are the webhook's, so a consumer can verify them.
func (s *Sender) sendAMQP(ctx context.Context, t Target, m Message) Result {
	start := time.Now()
	if t.AMQP == nil {
		return Result{Class: ClassBlocked, Err: "amqp endpoint without a configuration"}
	}
	fail := func(err error) Result {
		r := classifyAMQP(ctx, err)
		r.Duration = time.Since(start)
		return r
	}
	c, err := s.amqpConn(t)
	if err != nil {
		return fail(err)
	}
	ch, err := c.take()
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	h := http.Header{}
	Sign(h, m.ID, m.Time, m.Body, t.Keys)
	table := amqp.Table{}
	for k, v := range t.Headers {
		if !reserved(k) {
			table[k] = v
		}
	}
	for k, v := range h {
		table[strings.ToLower(k)] = v[0]
	}
	dc, err := ch.ch.PublishWithDeferredConfirmWithContext(ctx, t.AMQP.Exchange, t.AMQP.RoutingKey, true, false, amqp.Publishing{
		Headers:      table,
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    m.ID,
		Timestamp:    m.Time,
		AppId:        "posgate",
		Body:         m.Body,
	})
	if err != nil {
		_ = ch.ch.Close()
		return fail(err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		// Still in flight: the channel cannot be reused, a late return
		// would be taken for the next publish's.
		_ = ch.ch.Close()
		return fail(err)
	}
	if !acked {
		_ = ch.ch.Close()
		select {
		case e := <-ch.closed:
			if e != nil {
				return fail(e)
			}
		default:
		}
		return fail(errors.New("the broker nacked the message (not stored)"))
	}
	select {
	case ret := <-ch.returns:
		c.put(ch)
		r := Result{Class: ClassHTTP, Duration: time.Since(start),
			Err: fmt.Sprintf("returned unroutable: %d %s (no queue is bound to exchange %q with routing key %q)", ret.ReplyCode, ret.ReplyText, ret.Exchange, ret.RoutingKey)}
		return r
	default:
	}
	c.put(ch)
	// 200 stands for "confirmed" in the attempt log, which speaks HTTP
	// status codes.
	return Result{Status: 200, Duration: time.Since(start),
		Snippet: fmt.Appendf(nil, `{"exchange":%q,"routing_key":%q,"confirmed":true}`, t.AMQP.Exchange, t.AMQP.RoutingKey)}
}

// classifyAMQP turns an AMQP error into a Result. Failing to reach the
// broker, or losing the connection, is a network failure (offline
// evidence); a broker that answers and refuses is an endpoint failure.
func classifyAMQP(ctx context.Context, err error) Result {
	r := Result{Err: err.Error()}
	var (
		be *BlockedError
		de *DialError
		ae *amqp.Error
	)
	switch {
	case errors.As(err, &be):
		r.Class, r.Err = ClassBlocked, be.Error()
	case errors.As(err, &de):
		r.Class, r.Network = ClassConnect, true
		if de.DNS {
			r.Class = ClassDNS
		}
	case errors.Is(err, amqp.ErrClosed):
		r.Class, r.Network = ClassConnect, true
	case errors.Is(err, amqp.ErrCredentials), errors.Is(err, amqp.ErrSASL):
		r.Class, r.Status = ClassHTTP, 401
	case errors.As(err, &ae):
		r.Class = ClassHTTP
		if ae.Code == amqp.AccessRefused {
			r.Status = 403
		}
		// The broker shutting down (320), or an error the client made
		// itself because the link broke (a 501 frame error on a reset
		// connection, 504 on a closed one): network, not the endpoint.
		if ae.Code == amqp.ConnectionForced || !ae.Server {
			r.Class, r.Network = ClassConnect, true
		}
	case errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled:
		r.Class = ClassCanceled
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		r.Class = ClassTimeout
	case strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "x509:"):
		r.Class = ClassTLS
	default:
		r.Class = ClassIO
	}
	return r
}
