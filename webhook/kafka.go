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

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// KafkaConfig is where a "kafka" endpoint produces. The endpoint's url is
// tls://host:port (kafka://host:port, plaintext, under allow_http): a
// seed broker; the others come from the cluster's metadata and are dialled
// through the same address policy. Password is sealed like the endpoint
// secret and shown masked.
type KafkaConfig struct {
	// Topic is produced to; every record's key is the store_id, so one
	// store's events stay in one partition, in order.
	Topic string `json:"topic"`
	// SASL is "" (none), "plain", "scram-sha-256" or "scram-sha-512".
	SASL     string `json:"sasl,omitempty"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	// CAPEM holds extra PEM roots to trust for tls:// brokers.
	CAPEM string `json:"ca_pem,omitempty"`
}

// kafkaTopic is Kafka's legal topic name (Topic.java: [a-zA-Z0-9._-],
// at most 249).
func kafkaTopic(s string) bool { return nameOK(s, 1, 249, "._-") }

// validateKafka checks a kafka endpoint's URL and configuration.
func (s *Sender) validateKafka(raw string, c *KafkaConfig) error {
	const shape = "a kafka endpoint's url is tls://host:port (or kafka://host:port)"
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.Port() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return &FieldError{Field: "url", Msg: shape, Err: ErrBadURL}
	}
	switch strings.ToLower(u.Scheme) {
	case "tls":
	case "kafka":
		if !s.opts.AllowHTTP {
			return &FieldError{Field: "url", Msg: "url must use tls:// (plain kafka:// needs webhooks.allow_http)", Err: ErrHTTPNotAllowed}
		}
	default:
		return &FieldError{Field: "url", Msg: shape, Err: ErrBadURL}
	}
	switch {
	case c == nil:
		return &FieldError{Field: "kafka", Msg: "is required for type kafka"}
	case !kafkaTopic(c.Topic) || c.Topic == "." || c.Topic == "..":
		return &FieldError{Field: "kafka.topic", Msg: "1 to 249 of A-Z a-z 0-9 . _ -"}
	case c.SASL != "" && c.SASL != "plain" && c.SASL != "scram-sha-256" && c.SASL != "scram-sha-512":
		return &FieldError{Field: "kafka.sasl", Msg: `must be "", "plain", "scram-sha-256" or "scram-sha-512"`}
	case c.SASL == "" && (c.User != "" || c.Password != ""):
		return &FieldError{Field: "kafka.sasl", Msg: "names the mechanism for user and password"}
	case c.SASL != "" && c.User == "":
		return &FieldError{Field: "kafka.user", Msg: "is required with sasl"}
	case !credentialsOK(c.User, c.Password):
		return &FieldError{Field: "kafka", Msg: credentialsMsg}
	}
	return checkCAPEM("kafka.ca_pem", c.CAPEM)
}

// kafkaClients keeps one franz-go client per kafka endpoint and
// configuration; the client reconnects and retries by itself.
type kafkaClients struct {
	mu      sync.Mutex
	clients map[string]*kafkaClient // by endpoint id
}

type kafkaClient struct {
	key string
	cl  *kgo.Client
	// lastDial is the error of the latest dial, nil after one succeeded:
	// a produce that times out while the broker cannot be reached is a
	// network failure, not the endpoint's.
	mu       sync.Mutex
	lastDial error
}

func (k *kafkaClient) dialed(err error) {
	k.mu.Lock()
	k.lastDial = err
	k.mu.Unlock()
}

func (k *kafkaClient) dialErr() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastDial
}

// kafkaClient returns t's client, making one if there is none or its
// configuration changed.
func (s *Sender) kafkaClient(t Target) (*kafkaClient, error) {
	c := t.Kafka
	sum := sha256.Sum256([]byte(t.URL + "\x00" + c.Topic + "\x00" + c.SASL + "\x00" + c.User + "\x00" + c.Password + "\x00" + c.CAPEM))
	key := string(sum[:])
	p := s.kafka
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := p.clients[t.ID]; k != nil {
		if k.key == key {
			return k, nil
		}
		k.cl.Close()
		delete(p.clients, t.ID)
	}
	u, err := url.Parse(t.URL)
	if err != nil {
		return nil, err
	}
	timeout := min(s.opts.Timeout, 5*time.Second)
	var tc *tls.Config
	if strings.EqualFold(u.Scheme, "tls") {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
		if s.opts.TLSConfig != nil {
			tc = s.opts.TLSConfig.Clone()
		}
		if c.CAPEM != "" {
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			pool.AppendCertsFromPEM([]byte(c.CAPEM))
			tc.RootCAs = pool
		}
	}
	k := &kafkaClient{key: key}
	dial := func(ctx context.Context, network, host string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		conn, err := s.dialer.DialContext(ctx, network, host)
		if err == nil && tc != nil {
			cfg := tc.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName, _, _ = net.SplitHostPort(host)
			}
			tconn := tls.Client(conn, cfg)
			if err = tconn.HandshakeContext(ctx); err != nil {
				conn.Close()
			} else {
				conn = tconn
			}
		}
		k.dialed(err)
		return conn, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(u.Host),
		kgo.ClientID("posgate"),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.Dialer(dial),
		// acks=all with the idempotent producer (franz-go's default,
		// stated here because the guarantee rests on it): the broker
		// drops a batch the client retries after a lost response.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// A record not acknowledged within the attempt's time fails, and
		// the relay retries it on its own schedule.
		kgo.RecordDeliveryTimeout(s.opts.Timeout),
		kgo.ProduceRequestTimeout(s.opts.Timeout),
		kgo.MetadataMinAge(500 * time.Millisecond),
		// Every attempt waits for its record: lingering (10 ms by
		// default) would only add latency; concurrent attempts still
		// share a batch while a request is in flight.
		kgo.ProducerLinger(0),
	}
	if c.SASL != "" {
		var m sasl.Mechanism
		switch c.SASL {
		case "plain":
			m = plain.Auth{User: c.User, Pass: c.Password}.AsMechanism()
		case "scram-sha-256":
			m = scram.Auth{User: c.User, Pass: c.Password}.AsSha256Mechanism()
		case "scram-sha-512":
			m = scram.Auth{User: c.User, Pass: c.Password}.AsSha512Mechanism()
		}
		opts = append(opts, kgo.SASL(m))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	k.cl = cl
	if p.clients == nil {
		p.clients = map[string]*kafkaClient{}
	}
	p.clients[t.ID] = k
	return k, nil
}

// dropKafka closes endpoint id's Kafka client, if any.
func (s *Sender) dropKafka(id string) {
	s.kafka.mu.Lock()
	k := s.kafka.clients[id]
	delete(s.kafka.clients, id)
	s.kafka.mu.Unlock()
	if k != nil {
		k.cl.Close()
	}
}

// closeKafka closes every Kafka client.
func (s *Sender) closeKafka() {
	s.kafka.mu.Lock()
	ks := s.kafka.clients
	s.kafka.clients = nil
	s.kafka.mu.Unlock()
	for _, k := range ks {
		k.cl.Close()
	}
}

// sendKafka produces m to t's topic and waits until the partition leader
// and its in-sync replicas have it (acks=all). The record's key is the
// store id; its headers carry the entry_id (webhook-id) and the
// webhook's signature headers over the exact body, so a consumer can
// verify a record and drop at-least-once re-sends by entry_id.
func (s *Sender) sendKafka(ctx context.Context, t Target, m Message) Result {
	start := time.Now()
	if t.Kafka == nil {
		return Result{Class: ClassBlocked, Err: "kafka endpoint without a configuration"}
	}
	k, err := s.kafkaClient(t)
	if err != nil {
		r := classifyKafka(ctx, err, nil)
		r.Duration = time.Since(start)
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	h := http.Header{}
	Sign(h, m.ID, m.Time, m.Body, t.Keys)
	rec := &kgo.Record{Value: m.Body}
	if t.StoreID != "" {
		rec.Key = []byte(t.StoreID)
	}
	for name, v := range t.Headers {
		if !reserved(name) {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: name, Value: []byte(v)})
		}
	}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "content-type", Value: []byte("application/json")})
	for _, name := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "X-Webhook-Timestamp", "X-Webhook-Signature"} {
		if v := h.Get(name); v != "" {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: strings.ToLower(name), Value: []byte(v)})
		}
	}
	// Not ProduceSync: with the idempotent producer franz-go keeps a
	// record it may already have sent until it learns its fate, so a
	// cancelled context does not end the wait while the cluster is down.
	// The attempt ends at its timeout all the same; the record is left to
	// the client (it is cancelled if it was never sent, or lands later,
	// a duplicate under the same entry_id that consumers drop).
	done := make(chan error, 1)
	k.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) { done <- err })
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		r := classifyKafka(ctx, err, k.dialErr())
		r.Duration = time.Since(start)
		return r
	}
	return Result{Status: 200, Duration: time.Since(start),
		Snippet: fmt.Appendf(nil, `{"topic":%q,"partition":%d,"offset":%d}`, rec.Topic, rec.Partition, rec.Offset)}
}

// classifyKafka turns a produce error into a Result. franz-go retries
// dials by itself until the record times out, so a produce that failed
// while the latest dial failed too is judged by the dial's error: the
// cluster could not be reached (offline evidence), was refused by the
// address policy, or failed the TLS handshake.
func classifyKafka(ctx context.Context, err, dialErr error) Result {
	r := Result{Err: err.Error()}
	var (
		be *BlockedError
		de *DialError
		ke *kerr.Error
	)
	if dialErr != nil {
		r.Err = err.Error() + " (last connect: " + dialErr.Error() + ")"
		switch {
		case errors.As(dialErr, &be):
			r.Class, r.Err = ClassBlocked, be.Error()
		case errors.As(dialErr, &de):
			r.Class, r.Network = ClassConnect, true
			if de.DNS {
				r.Class = ClassDNS
			}
		case strings.Contains(dialErr.Error(), "tls:"), strings.Contains(dialErr.Error(), "x509:"):
			r.Class = ClassTLS
		default:
			r.Class, r.Network = ClassConnect, true // the handshake broke or timed out
		}
		return r
	}
	switch {
	case errors.As(err, &be):
		r.Class, r.Err = ClassBlocked, be.Error()
	case errors.As(err, &de):
		r.Class, r.Network = ClassConnect, true
		if de.DNS {
			r.Class = ClassDNS
		}
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism):
		r.Class, r.Status = ClassHTTP, 401
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		r.Class, r.Status = ClassHTTP, 403
	case errors.As(err, &ke):
		r.Class = ClassHTTP // the cluster answered, and said no
	case errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled:
		r.Class = ClassCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrRecordTimeout), isTimeout(err):
		r.Class = ClassTimeout
	case strings.Contains(err.Error(), "tls:"), strings.Contains(err.Error(), "x509:"):
		r.Class = ClassTLS
	default:
		r.Class = ClassIO
	}
	return r
}
