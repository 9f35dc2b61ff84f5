// Package webhook owns webhook endpoints and the HTTP side of delivering to
// them: endpoint CRUD with sealed whsec_ secrets and a 24-hour rotation
// overlap, the validation ping on create, both signature styles of DESIGN §6
// (X-Webhook-Signature and Standard Webhooks), and a Sender whose dialer
// refuses loopback, private and link-local addresses at dial time, so a DNS
// name cannot sneak past a check made only when the endpoint was saved.
//
// An endpoint may instead be of type "nats": the same signed body is
// published to a NATS JetStream subject with the entry_id as Nats-Msg-Id
// (nats.go), through the same policy dialer.
//
// It owns the webhook_endpoints table. It does not queue, retry or record
// attempts: package outbox does, and calls Sender.Send once per attempt.
package webhook
