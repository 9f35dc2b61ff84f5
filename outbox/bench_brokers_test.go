package outbox_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/posgate/posgate/internal/rabbittest"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

// drainBroker runs the relay until endpoint has nothing pending and
// returns deliveries per second.
func drainBroker(b *testing.B, e *env, endpoint string, n int) float64 {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	stop := e.run()
	defer stop()
	deadline := start.Add(5 * time.Minute)
	for {
		c, err := e.relay.Counts(ctx)
		if err == nil && c[endpoint] == (outbox.Counts{}) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("relay did not deliver %d in 5 min (%+v)", n, c[endpoint])
		}
		time.Sleep(5 * time.Millisecond)
	}
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkDeliveryAMQP: deliveries/s from the outbox to a real RabbitMQ
// (Debian's rabbitmq-server on loopback, durable queue, persistent
// messages, publisher confirms), beside a plain amqp091-go client
// publishing the same body the same way (mandatory, persistent, one
// confirm awaited per publish) at the same concurrency; 10,000 of each.
func BenchmarkDeliveryAMQP(b *testing.B) {
	const n = 10000
	for b.Loop() {
		rmq := rabbittest.Start(b, rabbittest.Options{})
		ctx := context.Background()
		conn, err := rmq.Dial(ctx)
		if err != nil {
			b.Fatal(err)
		}
		setup, _ := conn.Channel()
		if err := setup.ExchangeDeclare("bench", "direct", true, false, false, false, nil); err != nil {
			b.Fatal(err)
		}
		for _, q := range []string{"raw", "relay"} {
			if _, err := setup.QueueDeclare(q, true, false, false, false, nil); err != nil {
				b.Fatal(err)
			}
			if err := setup.QueueBind(q, q, "bench", false, nil); err != nil {
				b.Fatal(err)
			}
		}
		e := newEnv(b, "", outbox.Options{}, webhook.SenderOptions{Timeout: 10 * time.Second})
		ep, _, err := e.hooks.Create(ctx, webhook.NewParams{Type: webhook.TypeAMQP, URL: rmq.URL(),
			AMQP: &webhook.AMQPConfig{Exchange: "bench", RoutingKey: "relay", User: "posgate", Password: "rabbit-test-pw-1"}})
		if err != nil {
			b.Fatal(err)
		}
		conc := e.relay.Options().PerEndpoint
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range conc {
			wg.Go(func() {
				ch, err := conn.Channel()
				if err != nil {
					b.Error(err)
					return
				}
				if err := ch.Confirm(false); err != nil {
					b.Error(err)
					return
				}
				for i := next.Add(1); i <= n; i = next.Add(1) {
					dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "bench", "raw", true, false, amqp.Publishing{
						ContentType: "application/json", DeliveryMode: amqp.Persistent, MessageId: fmt.Sprint("raw-", i), Body: benchData})
					if err == nil {
						var ok bool
						ok, err = dc.WaitContext(ctx)
						if err == nil && !ok {
							err = fmt.Errorf("nacked")
						}
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		raw := float64(n) / time.Since(start).Seconds()
		conn.Close()

		seed(b, e.db, ep.ID, n)
		rate := drainBroker(b, e, ep.ID, n)
		rmq.Kill()
		b.ReportMetric(rate, "deliveries/s")
		b.ReportMetric(raw, "raw_pub/s")
		b.ReportMetric(rate/raw, "ratio")
	}
}

// BenchmarkDeliveryKafka: deliveries/s from the outbox to kfake (franz-go's
// in-process fake cluster: a protocol double, so the figure measures
// posgate and the client, not a Kafka broker's disk), beside a plain
// franz-go client producing the same body with acks=all at the same
// concurrency; 20,000 of each.
func BenchmarkDeliveryKafka(b *testing.B) {
	const n = 20000
	for b.Loop() {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		addr := cluster.ListenAddrs()[0]
		ctx := context.Background()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"))
		if err != nil {
			b.Fatal(err)
		}
		e := newEnv(b, "", outbox.Options{}, webhook.SenderOptions{Timeout: 10 * time.Second}, webhook.Options{StoreID: "bench"})
		ep, _, err := e.hooks.Create(ctx, webhook.NewParams{Type: webhook.TypeKafka, URL: "kafka://" + addr,
			Kafka: &webhook.KafkaConfig{Topic: "bench"}})
		if err != nil {
			b.Fatal(err)
		}
		conc := e.relay.Options().PerEndpoint
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range conc {
			wg.Go(func() {
				for i := next.Add(1); i <= n; i = next.Add(1) {
					if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("bench"), Value: benchData}).FirstErr(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		raw := float64(n) / time.Since(start).Seconds()
		cl.Close()

		seed(b, e.db, ep.ID, n)
		rate := drainBroker(b, e, ep.ID, n)
		e.hooks.Sender().CloseIdleConnections()
		cluster.Close()
		b.ReportMetric(rate, "deliveries/s")
		b.ReportMetric(raw, "raw_pub/s")
		b.ReportMetric(rate/raw, "ratio")
	}
}
