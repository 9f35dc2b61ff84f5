package webhook_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/posgate/posgate/webhook"
)

// Issue 18 part 1 (kafka) against franz-go's kfake, an in-process fake
// cluster that speaks the Kafka wire protocol (a protocol double, not a
// broker: docs/fleet.md says what that leaves untested), over TLS with
// a configurable CA and SASL/SCRAM-SHA-256: the validation ping is
// produced with the store id as key, the entry_id and the signature
// headers as record headers; the password is sealed and masked; without
// the CA the handshake fails, with a wrong password the login.
func TestKafkaEndpointTLSAndSASL(t *testing.T) {
	caPEM, cert := testTLS(t)
	const password = "kafka-pw-secret-3131"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "posgate"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "shop", password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addr := cluster.ListenAddrs()[0]
	db, path := openStore(t)
	eps := webhook.New(db, master, webhook.NewSender(webhook.SenderOptions{AllowPrivate: true, Timeout: 5 * time.Second}), webhook.Options{StoreID: "shop-1"})
	ctx := context.Background()
	url := "tls://" + addr
	cfg := webhook.KafkaConfig{Topic: "posgate", SASL: "scram-sha-256", User: "shop", Password: password, CAPEM: caPEM}
	c, _, err := eps.Create(ctx, webhook.NewParams{Type: webhook.TypeKafka, URL: url, Kafka: &cfg, Headers: map[string]string{"X-Tenant": "t1"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if c.Type != webhook.TypeKafka || c.Kafka.Password != "****" || c.Kafka.User != "shop" || c.Kafka.Topic != "posgate" {
		t.Fatalf("created view %+v", c.Kafka)
	}
	if ep, _ := eps.Get(ctx, c.ID); ep.Kafka == nil || ep.Kafka.Password != "****" {
		t.Fatalf("get view %+v", ep.Kafka)
	}

	// The ping as a consumer reads it.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(caPEM))
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scramAuth("shop", password)), kgo.ConsumeTopics("posgate"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fs := cons.PollFetches(pctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records, want the ping", len(recs))
	}
	r := recs[0]
	h := http.Header{}
	for _, rh := range r.Headers {
		h.Set(rh.Key, string(rh.Value))
	}
	if string(r.Key) != "shop-1" || !strings.Contains(string(r.Value), `"entry_id":"`+h.Get("webhook-id")+`"`) || h.Get("X-Tenant") != "t1" {
		t.Fatalf("record key %q, headers %v, value %s", r.Key, h, r.Value)
	}
	if err := verifyWebhook(c.Secret, h, r.Value, time.Now()); err != nil {
		t.Fatalf("the record does not verify with the endpoint's secret: %v", err)
	}

	masked := cfg
	masked.Password = "****"
	if _, err := eps.Update(ctx, c.ID, webhook.Patch{Kafka: &masked}); err != nil {
		t.Fatalf("patch with the password masked (pinged with the stored one): %v", err)
	}
	if tg, _ := eps.Target(ctx, c.ID); tg.Kafka.Password != password {
		t.Fatal("the stored password was not kept")
	}
	assertNotInFiles(t, path, password)
	db.Close()
	assertNotInFiles(t, path, password)

	eps2, _, _ := newEndpoints(t, webhook.SenderOptions{AllowPrivate: true, Timeout: 3 * time.Second})
	var pe *webhook.PingError
	noCA := cfg
	noCA.CAPEM = ""
	if _, _, err := eps2.Create(ctx, webhook.NewParams{Type: webhook.TypeKafka, URL: url, Kafka: &noCA}); !errors.As(err, &pe) || pe.Result.Class != webhook.ClassTLS {
		t.Fatalf("without the CA: %v", err)
	}
	wrong := cfg
	wrong.Password = "nope"
	// kfake closes the connection on a failed SCRAM exchange where a
	// real broker answers SASL_AUTHENTICATION_FAILED (mapped to 401, see
	// TestClassifyKafka); either way nothing is produced.
	if _, _, err := eps2.Create(ctx, webhook.NewParams{Type: webhook.TypeKafka, URL: url, Kafka: &wrong}); !errors.As(err, &pe) || pe.Result.OK() {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestKafkaEndpointRefusals(t *testing.T) {
	eps, _, _ := newEndpoints(t, webhook.SenderOptions{AllowPrivate: true})
	ctx := context.Background()
	ok := &webhook.KafkaConfig{Topic: "t"}
	for _, c := range []struct {
		p     webhook.NewParams
		field string
	}{
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "https://127.0.0.1:1", Kafka: ok}, "url"},
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "kafka://127.0.0.1:1", Kafka: ok}, "url"}, // plain needs allow_http
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "tls://127.0.0.1", Kafka: ok}, "url"},     // no port
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "tls://u:p@127.0.0.1:1", Kafka: ok}, "url"},
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "tls://127.0.0.1:1"}, "kafka"},
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "tls://127.0.0.1:1", Kafka: &webhook.KafkaConfig{Topic: "a b"}}, "kafka.topic"},
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "tls://127.0.0.1:1", Kafka: &webhook.KafkaConfig{Topic: ".."}}, "kafka.topic"},
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "tls://127.0.0.1:1", Kafka: &webhook.KafkaConfig{Topic: strings.Repeat("a", 250)}}, "kafka.topic"},
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "tls://127.0.0.1:1", Kafka: &webhook.KafkaConfig{Topic: "t", SASL: "gssapi", User: "u"}}, "kafka.sasl"},
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "tls://127.0.0.1:1", Kafka: &webhook.KafkaConfig{Topic: "t", User: "u", Password: "p"}}, "kafka.sasl"},
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "tls://127.0.0.1:1", Kafka: &webhook.KafkaConfig{Topic: "t", SASL: "plain"}}, "kafka.user"},
		{webhook.NewParams{Type: webhook.TypeKafka, URL: "tls://127.0.0.1:1", Kafka: &webhook.KafkaConfig{Topic: "t", CAPEM: "x"}}, "kafka.ca_pem"},
		{webhook.NewParams{URL: "https://127.0.0.1:1", Kafka: ok}, "kafka"},
	} {
		_, _, err := eps.Create(ctx, c.p)
		var fe *webhook.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a FieldError on %s", c.p, err, c.field)
		}
	}
}

// The address policy covers Kafka, seed broker and every broker the
// metadata names: without allow_private a loopback seed is refused at
// dial time and never connected to.
func TestKafkaAddressPolicy(t *testing.T) {
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
	_, _, err = eps.Create(context.Background(), webhook.NewParams{Type: webhook.TypeKafka,
		URL: "tls://" + ln.Addr().String(), Kafka: &webhook.KafkaConfig{Topic: "t"}})
	var pe *webhook.PingError
	if !errors.As(err, &pe) || pe.Result.Class != webhook.ClassBlocked || !strings.Contains(pe.Result.Err, "loopback") {
		t.Fatalf("loopback broker without allow_private: %v", err)
	}
	if accepted.Load() != 0 {
		t.Fatal("the broker was connected to")
	}
}

func scramAuth(user, pass string) sasl.Mechanism {
	return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
}
