package webhook_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/posgate/posgate/internal/rabbittest"
	"github.com/posgate/posgate/webhook"
)

// rabbitTLS starts a real RabbitMQ with a TLS listener whose certificate
// is signed by a test CA, and returns it with the CA.
func rabbitTLS(t *testing.T) (*rabbittest.Server, string) {
	t.Helper()
	rabbittest.Require(t)
	caPEM, cert := testTLS(t)
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return rabbittest.Start(t, rabbittest.Options{User: "shop", Password: "amqp-pw-secret-919", CertFile: certFile, KeyFile: keyFile}), caPEM
}

// declare makes exchange posgate (direct) and queue q bound to it with
// key q, from the test's own admin connection.
func declare(t *testing.T, s *rabbittest.Server, queues ...string) *amqp.Channel {
	t.Helper()
	conn, err := s.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("posgate", "direct", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(q, q, "posgate", false, nil); err != nil {
			t.Fatal(err)
		}
	}
	return ch
}

// Issue 18 parts 1–2 (amqp) against a real RabbitMQ over TLS with a
// configurable CA: the validation ping is published persistent, with
// the entry_id as message_id and the webhook's signature headers, and is
// confirmed; the password is sealed (never in the data directory's
// files) and masked; sent back masked it keeps the stored one; without
// the CA the handshake is refused, with a wrong password the login; an
// unroutable routing key is a failed attempt, not a silent drop.
func TestAMQPEndpointAgainstRabbitMQ(t *testing.T) {
	rmq, caPEM := rabbitTLS(t)
	ch := declare(t, rmq, "hq")
	const password = "amqp-pw-secret-919"
	eps, db, path := newEndpoints(t, webhook.SenderOptions{AllowPrivate: true, Timeout: 5 * time.Second})
	ctx := context.Background()
	url := "amqps://127.0.0.1:" + strconv.Itoa(rmq.TLSPort) + "/"
	cfg := webhook.AMQPConfig{Exchange: "posgate", RoutingKey: "hq", User: "shop", Password: password, CAPEM: caPEM}
	c, _, err := eps.Create(ctx, webhook.NewParams{Type: webhook.TypeAMQP, URL: url, AMQP: &cfg,
		Headers: map[string]string{"X-Tenant": "shop-1"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if c.Type != webhook.TypeAMQP || c.AMQP.Password != "****" || c.AMQP.User != "shop" || c.AMQP.RoutingKey != "hq" {
		t.Fatalf("created view %+v", c.AMQP)
	}
	if ep, _ := eps.Get(ctx, c.ID); ep.AMQP == nil || ep.AMQP.Password != "****" || ep.NATS != nil {
		t.Fatalf("get view %+v", ep.AMQP)
	}

	// The ping as a consumer sees it.
	d, ok, err := ch.Get("hq", true)
	if err != nil || !ok {
		t.Fatalf("the ping is not in the queue: %v %v", ok, err)
	}
	var env struct {
		Event   string `json:"event"`
		EntryID string `json:"entry_id"`
	}
	if err := json.Unmarshal(d.Body, &env); err != nil || env.Event != "ping" {
		t.Fatalf("body %s", d.Body)
	}
	if d.MessageId != env.EntryID || d.DeliveryMode != amqp.Persistent || d.ContentType != "application/json" {
		t.Fatalf("message_id %q (entry_id %q), delivery mode %d, content type %q", d.MessageId, env.EntryID, d.DeliveryMode, d.ContentType)
	}
	h := http.Header{}
	for k, v := range d.Headers {
		h.Set(k, v.(string))
	}
	if h.Get("X-Tenant") != "shop-1" || h.Get("webhook-id") != env.EntryID {
		t.Fatalf("headers %v", d.Headers)
	}
	if err := verifyWebhook(c.Secret, h, d.Body, time.Now()); err != nil {
		t.Fatalf("the message does not verify with the endpoint's secret: %v", err)
	}

	masked := cfg
	masked.Password = "****"
	if _, err := eps.Update(ctx, c.ID, webhook.Patch{AMQP: &masked}); err != nil {
		t.Fatalf("patch with the password masked (pinged with the stored one): %v", err)
	}
	if tg, _ := eps.Target(ctx, c.ID); tg.AMQP.Password != password {
		t.Fatal("the stored password was not kept")
	}
	assertNotInFiles(t, path, password)
	db.Close()
	assertNotInFiles(t, path, password)

	eps2, _, _ := newEndpoints(t, webhook.SenderOptions{AllowPrivate: true, Timeout: 5 * time.Second})
	var pe *webhook.PingError
	noCA := cfg
	noCA.CAPEM = ""
	if _, _, err := eps2.Create(ctx, webhook.NewParams{Type: webhook.TypeAMQP, URL: url, AMQP: &noCA}); !errors.As(err, &pe) || pe.Result.Class != webhook.ClassTLS {
		t.Fatalf("without the CA: %v", err)
	}
	wrong := cfg
	wrong.Password = "nope"
	if _, _, err := eps2.Create(ctx, webhook.NewParams{Type: webhook.TypeAMQP, URL: url, AMQP: &wrong}); !errors.As(err, &pe) || pe.Result.Status != 401 && pe.Result.Status != 403 {
		t.Fatalf("wrong password: %v", err)
	}
	unroutable := cfg
	unroutable.RoutingKey = "nobody-bound"
	if _, _, err := eps2.Create(ctx, webhook.NewParams{Type: webhook.TypeAMQP, URL: url, AMQP: &unroutable}); !errors.As(err, &pe) || !strings.Contains(pe.Result.Err, "unroutable") {
		t.Fatalf("unroutable: %v", err)
	}
	missing := cfg
	missing.Exchange = "no-such-exchange"
	if _, _, err := eps2.Create(ctx, webhook.NewParams{Type: webhook.TypeAMQP, URL: url, AMQP: &missing}); !errors.As(err, &pe) || !strings.Contains(pe.Result.Err, "NOT_FOUND") {
		t.Fatalf("missing exchange: %v", err)
	}
	// Nothing of the refused ones reached the queue.
	if n, err := ch.QueueDeclarePassive("hq", true, false, false, false, nil); err != nil || n.Messages != 1 {
		t.Fatalf("queue holds %d messages (%v), want the second ping only", n.Messages, err)
	}
}

func TestAMQPEndpointRefusals(t *testing.T) {
	eps, _, _ := newEndpoints(t, webhook.SenderOptions{AllowPrivate: true})
	ctx := context.Background()
	ok := &webhook.AMQPConfig{Exchange: "x", RoutingKey: "k"}
	for _, c := range []struct {
		p     webhook.NewParams
		field string
	}{
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "https://127.0.0.1:1", AMQP: ok}, "url"},
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "amqp://127.0.0.1:1/", AMQP: ok}, "url"}, // plain needs allow_http
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "amqps://u:p@127.0.0.1:1/", AMQP: ok}, "url"},
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "amqps://127.0.0.1:1/?heartbeat=1", AMQP: ok}, "url"},
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "amqps://127.0.0.1:1/"}, "amqp"},
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "amqps://127.0.0.1:1/", AMQP: &webhook.AMQPConfig{Exchange: "a b", RoutingKey: "k"}}, "amqp.exchange"},
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "amqps://127.0.0.1:1/", AMQP: &webhook.AMQPConfig{}}, "amqp.routing_key"},
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "amqps://127.0.0.1:1/", AMQP: &webhook.AMQPConfig{RoutingKey: "k\n"}}, "amqp.routing_key"},
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "amqps://127.0.0.1:1/", AMQP: &webhook.AMQPConfig{RoutingKey: "k", Password: "p"}}, "amqp.user"},
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "amqps://127.0.0.1:1/", AMQP: &webhook.AMQPConfig{RoutingKey: "k", CAPEM: "x"}}, "amqp.ca_pem"},
		{webhook.NewParams{Type: webhook.TypeAMQP, URL: "amqps://127.0.0.1:1/", AMQP: ok, NATS: &webhook.NATSConfig{Subject: "a"}}, "nats"},
		{webhook.NewParams{Type: webhook.TypeNATS, URL: "tls://127.0.0.1:1", NATS: &webhook.NATSConfig{Subject: "a"}, AMQP: ok}, "amqp"},
		{webhook.NewParams{URL: "https://127.0.0.1:1", AMQP: ok}, "amqp"},
	} {
		_, _, err := eps.Create(ctx, c.p)
		var fe *webhook.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a FieldError on %s", c.p, err, c.field)
		}
	}
}

// The address policy covers AMQP: without allow_private a loopback
// broker is refused at dial time and never connected to.
func TestAMQPAddressPolicy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	eps, _, _ := newEndpoints(t, webhook.SenderOptions{Timeout: 2 * time.Second})
	_, _, err = eps.Create(context.Background(), webhook.NewParams{Type: webhook.TypeAMQP,
		URL: "amqps://" + ln.Addr().String() + "/", AMQP: &webhook.AMQPConfig{Exchange: "x", RoutingKey: "k"}})
	var pe *webhook.PingError
	if !errors.As(err, &pe) || pe.Result.Class != webhook.ClassBlocked || !strings.Contains(pe.Result.Err, "loopback") {
		t.Fatalf("loopback broker without allow_private: %v", err)
	}
	if accepted.Load() != 0 {
		t.Fatal("the broker was connected to")
	}
}
