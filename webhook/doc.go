// Package webhook owns webhook endpoints and the HTTP side of delivering to
// them: endpoint CRUD with sealed whsec_ secrets and a 24-hour rotation
// overlap, the validation ping on create, both signature styles of DESIGN §6
// (X-Webhook-Signature and Standard Webhooks), and a Sender whose dialer
// refuses loopback, private and link-local addresses at dial time, so a DNS
// name cannot sneak past a check made only when the endpoint was saved.
//
// An endpoint may instead be of type "nats": the same signed body is
// published to a NATS JetStream subject with the entry_id as Nats-Msg-Id
// (nats.go); "amqp": published persistent and mandatory to a RabbitMQ
// exchange with publisher confirms and the entry_id as message_id
// (amqp091-go); or "kafka": produced to a topic by the idempotent
// producer, keyed by the store id, the entry_id in a header (franz-go).
// Every broker connection goes through the same policy dialer, and the
// broker credentials are sealed like the endpoint secret.
//
// It owns the webhook_endpoints table. It does not queue, retry or record
// attempts: package outbox does, and calls Sender.Send once per attempt.
package webhook
