package api

import (
	"crypto/sha256"
	"errors"
	"net/http"

	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/webhook"
)

// Webhook error codes (statuses in statusOf).
const (
	CodeEndpointLimit      = "ENDPOINT_LIMIT_REACHED"
	CodeEndpointValidation = "ENDPOINT_VALIDATION_FAILED"
)

// endpointRequest is the body of POST and PATCH /v1/webhooks. Pointers
// tell "absent" from "empty" for PATCH.
type endpointRequest struct {
	URL         *string            `json:"url"`
	Events      *[]string          `json:"events"`
	Description *string            `json:"description"`
	Category    *string            `json:"category"`
	Headers     *map[string]string `json:"headers"`
	Metadata    *map[string]string `json:"metadata"`
	Status      *string            `json:"status"`
	RateLimit   *rateLimitRequest  `json:"rate_limit"`
	Ordering    *string            `json:"ordering"`
	Type        *string            `json:"type"` // create only
	NATS        *natsRequest       `json:"nats"`
	AMQP        *amqpRequest       `json:"amqp"`
	Kafka       *kafkaRequest      `json:"kafka"`
}

// rateLimitRequest is webhook.RateLimit as a request body has it: its own
// type so the OpenAPI document can say that, in a request, both fields
// may be left out (the endpoint's answer always has both).
type rateLimitRequest webhook.RateLimit

// limit is the PATCH value: nil when the body had no rate_limit.
func (r *rateLimitRequest) limit() *webhook.RateLimit {
	if r == nil {
		return nil
	}
	l := webhook.RateLimit(*r)
	return &l
}

// natsRequest is webhook.NATSConfig as a request body has it (fields may
// be left out; credentials are sent, not masked).
type natsRequest webhook.NATSConfig

func (n *natsRequest) config() *webhook.NATSConfig {
	if n == nil {
		return nil
	}
	c := webhook.NATSConfig(*n)
	return &c
}

// amqpRequest is webhook.AMQPConfig as a request body has it (fields may
// be left out; the password is sent, not masked).
type amqpRequest webhook.AMQPConfig

func (a *amqpRequest) config() *webhook.AMQPConfig {
	if a == nil {
		return nil
	}
	c := webhook.AMQPConfig(*a)
	return &c
}

// kafkaRequest is webhook.KafkaConfig as a request body has it.
type kafkaRequest webhook.KafkaConfig

func (k *kafkaRequest) config() *webhook.KafkaConfig {
	if k == nil {
		return nil
	}
	c := webhook.KafkaConfig(*k)
	return &c
}

// decodeEndpoint decodes and shape-checks an endpoint body; create
// requires url. Field rules (scheme, event names, header names) are
// webhook's and come back from it as *webhook.FieldError.
func decodeEndpoint(b []byte, create bool) (endpointRequest, error) {
	var req endpointRequest
	if err := decodeBytes(b, &req); err != nil {
		return endpointRequest{}, err
	}
	if create && (req.URL == nil || *req.URL == "") {
		return endpointRequest{}, validationError("url", "is required")
	}
	if !create && req.Type != nil {
		return endpointRequest{}, validationError("type", "cannot be changed; create a new endpoint")
	}
	if req.Events != nil && len(*req.Events) > len(webhook.EventTypes) {
		return endpointRequest{}, validationError("events", "lists more types than exist")
	}
	return req, nil
}

// endpointView is an endpoint as the API shows it, with its counters.
type endpointView struct {
	webhook.Endpoint
	Pending int64 `json:"pending"`
	Dead    int64 `json:"dead"`
}

// createdView adds the secret, shown by create and rotate only.
type createdView struct {
	endpointView
	Secret string `json:"secret"`
}

func webhooksOff() *Error {
	return &Error{Code: CodeUnavailable, Message: "webhooks are not enabled in this posgate"}
}

// webhookError maps webhook and outbox errors to client errors.
func webhookError(err error) error {
	var (
		fe *webhook.FieldError
		pe *webhook.PingError
	)
	switch {
	case errors.As(err, &fe):
		return validationError(fe.Field, fe.Msg)
	case errors.As(err, &pe):
		return &Error{Code: CodeEndpointValidation, Message: pe.Error(), Details: map[string]any{
			"status": pe.Result.Status, "error_class": pe.Result.Class, "error": pe.Result.Err}}
	case errors.Is(err, webhook.ErrLimitReached):
		return &Error{Code: CodeEndpointLimit, Message: "at most 16 webhook endpoints may exist; delete one first"}
	case errors.Is(err, webhook.ErrIdempotencyMismatch):
		return &Error{Code: CodeIdempotencyReused, Message: "Idempotency-Key was already used with a different request",
			Details: map[string]any{"field": "Idempotency-Key"}}
	case errors.Is(err, webhook.ErrNotFound), errors.Is(err, outbox.ErrNotFound):
		return notFound("webhook endpoint")
	}
	return err
}

// handleWebhookCreate creates an endpoint. It keeps its own idempotency
// record on the endpoint row instead of going through idempotent(): that
// would store the response, secret included, in plaintext; a replay here
// re-opens the sealed secret instead.
func handleWebhookCreate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Webhooks == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		key, err := idempotencyKeyOf(r)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		if err := checkJSONType(r); err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		body, err := readBody(w, r)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		req, err := decodeEndpoint(body, true)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		hash := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...))
		p := webhook.NewParams{URL: *req.URL, IdemScope: keyFrom(r.Context()).ID, IdemKey: key, IdemHash: hash[:]}
		if req.Events != nil {
			p.Events = *req.Events
		}
		if req.Description != nil {
			p.Description = *req.Description
		}
		if req.Category != nil {
			p.Category = *req.Category
		}
		if req.Headers != nil {
			p.Headers = *req.Headers
		}
		if req.Metadata != nil {
			p.Metadata = *req.Metadata
		}
		if req.Status != nil {
			p.Status = *req.Status
		}
		if req.RateLimit != nil {
			p.RateLimit = webhook.RateLimit(*req.RateLimit)
		}
		if req.Ordering != nil {
			p.Ordering = *req.Ordering
		}
		if req.Type != nil {
			p.Type = *req.Type
		}
		p.NATS, p.AMQP, p.Kafka = req.NATS.config(), req.AMQP.config(), req.Kafka.config()
		c, replayed, err := d.Webhooks.Create(r.Context(), p)
		if err != nil {
			writeError(w, r, d.Log, webhookError(err))
			return
		}
		if replayed {
			w.Header().Set("Idempotent-Replayed", "true")
		} else {
			d.Log.Info().Str("endpoint_id", c.ID).Msg("webhook endpoint created")
		}
		writeJSON(w, http.StatusCreated, createdView{endpointView: view(c.Endpoint, d, r), Secret: c.Secret})
	})
}

// view adds the counters; a failure to read them is logged, not fatal.
func view(ep webhook.Endpoint, d Deps, r *http.Request) endpointView {
	v := endpointView{Endpoint: ep}
	if d.Outbox != nil {
		counts, err := d.Outbox.Counts(r.Context())
		if err != nil {
			d.Log.Warn().Err(err).Msg("read delivery counters")
		}
		v.Pending, v.Dead = counts[ep.ID].Pending, counts[ep.ID].Dead
	}
	return v
}

func handleWebhookList(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Webhooks == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		eps, err := d.Webhooks.List(r.Context())
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		var counts map[string]outbox.Counts
		if d.Outbox != nil {
			if counts, err = d.Outbox.Counts(r.Context()); err != nil {
				writeError(w, r, d.Log, err)
				return
			}
		}
		out := make([]endpointView, len(eps))
		for i, ep := range eps {
			out[i] = endpointView{Endpoint: ep, Pending: counts[ep.ID].Pending, Dead: counts[ep.ID].Dead}
		}
		writeList(w, out, "")
	})
}

func handleWebhookGet(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Webhooks == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		ep, err := d.Webhooks.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Log, webhookError(err))
			return
		}
		writeJSON(w, http.StatusOK, view(ep, d, r))
	})
}

func handleWebhookUpdate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Webhooks == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		if err := checkJSONType(r); err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		body, err := readBody(w, r)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		req, err := decodeEndpoint(body, false)
		if err != nil {
			writeError(w, r, d.Log, err)
			return
		}
		ep, err := d.Webhooks.Update(r.Context(), r.PathValue("id"), webhook.Patch{
			URL: req.URL, Events: req.Events, Description: req.Description, Category: req.Category,
			Headers: req.Headers, Metadata: req.Metadata, Status: req.Status,
			RateLimit: req.RateLimit.limit(), Ordering: req.Ordering, NATS: req.NATS.config(), AMQP: req.AMQP.config(), Kafka: req.Kafka.config(),
		})
		if err != nil {
			writeError(w, r, d.Log, webhookError(err))
			return
		}
		if d.Outbox != nil {
			d.Outbox.Notify() // a re-enabled endpoint's backlog resumes now
		}
		writeJSON(w, http.StatusOK, view(ep, d, r))
	})
}

func handleWebhookDelete(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Webhooks == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		if err := d.Webhooks.Delete(r.Context(), r.PathValue("id")); err != nil {
			writeError(w, r, d.Log, webhookError(err))
			return
		}
		d.Log.Info().Str("endpoint_id", r.PathValue("id")).Msg("webhook endpoint deleted")
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleWebhookRotate makes a new secret. Like create it is kept out of
// idempotent(), which would store the secret in plaintext; a retried
// rotation makes another secret, and the one before keeps signing for
// the overlap.
func handleWebhookRotate(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Webhooks == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		c, err := d.Webhooks.RotateSecret(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Log, webhookError(err))
			return
		}
		d.Log.Info().Str("endpoint_id", c.ID).Msg("webhook secret rotated")
		writeJSON(w, http.StatusOK, createdView{endpointView: view(c.Endpoint, d, r), Secret: c.Secret})
	})
}

func handleWebhookTest(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.Webhooks == nil || d.Outbox == nil {
			writeError(w, r, d.Log, webhooksOff())
			return
		}
		ev, err := d.Outbox.SendTest(r.Context(), r.PathValue("id"))
		if err != nil {
			writeError(w, r, d.Log, webhookError(err))
			return
		}
		writeJSON(w, http.StatusAccepted, ev)
	})
}
