package webhook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
)

// Endpoint statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// EventTypes are the event types of DESIGN §6, the values an endpoint's
// events filter may hold.
var EventTypes = []string{
	"payment.completed", "payment.failed", "payment.cancelled", "payment.timeout", "payment.reversed", "payment.needs_review",
	"invoice.created", "receipt.printed", "receipt.retry", "receipt.error",
	"fiscalization.completed", "fiscalization.dead_letter",
	"device.connected", "device.disconnected", "webhook.test", "ping",
	"receipt.duplicated", "printer.clock_set", // fiscal printers (docs/datecs.md, Bulgaria)
	EventDeliveryExhausted, EventEndpointDisabled, EventEndpointRecovered,
}

// Operational events (issue 18): a head office watches its receivers
// through the same outbox. They are never sent to the endpoint they are
// about, and an exhausted delivery of an operational event raises none,
// so two failing endpoints cannot feed each other.
const (
	EventDeliveryExhausted = "delivery.exhausted"
	EventEndpointDisabled  = "endpoint.disabled"
	EventEndpointRecovered = "endpoint.recovered"
)

// Orderings of an endpoint's deliveries.
const (
	OrderingNone = "none" // up to PerEndpoint requests at a time, retried independently
	OrderingFIFO = "fifo" // one at a time, in event order; the next waits for the previous success
)

// RateLimit caps requests to one endpoint. PerSecond 0 means no limit.
type RateLimit struct {
	PerSecond float64 `json:"per_second"`
	Burst     int     `json:"burst"`
}

// Sentinel errors.
var (
	ErrNotFound            = errors.New("webhook endpoint not found")
	ErrLimitReached        = errors.New("webhook endpoint limit reached")
	ErrIdempotencyMismatch = errors.New("idempotency key already used with a different request")
)

// FieldError is an invalid field of a create or update.
type FieldError struct {
	Field string
	Msg   string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }
func (e *FieldError) Unwrap() error { return e.Err }

// PingError is returned when the validation ping did not get a 2xx.
type PingError struct {
	Result Result
}

func (e *PingError) Error() string {
	if e.Result.Status != 0 {
		return fmt.Sprintf("validation ping answered HTTP %d; a 2xx is required", e.Result.Status)
	}
	return fmt.Sprintf("validation ping failed (%s): %s", e.Result.Class, e.Result.Err)
}

// Endpoint is a webhook endpoint as listed: never with its secret.
type Endpoint struct {
	ID          string   `json:"id"`
	Type        string   `json:"type"` // webhook, nats, amqp or kafka
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
	Category    string   `json:"category"`
	// Headers are the custom headers with masked values ("Bearer ****"):
	// the values are sealed and never shown again.
	Headers        map[string]string `json:"headers"`
	Metadata       map[string]string `json:"metadata"`
	Status         string            `json:"status"`
	DisabledReason string            `json:"disabled_reason,omitempty"`
	RateLimit      RateLimit         `json:"rate_limit"`
	Ordering       string            `json:"ordering"`
	// FailingSince is when the current run of failed attempts began.
	FailingSince *time.Time `json:"failing_since,omitempty"`
	// NATS is a nats endpoint's destination, credentials masked.
	NATS *NATSConfig `json:"nats,omitempty"`
	// AMQP is an amqp endpoint's destination, credentials masked.
	AMQP *AMQPConfig `json:"amqp,omitempty"`
	// Kafka is a kafka endpoint's destination, credentials masked.
	Kafka *KafkaConfig `json:"kafka,omitempty"`
	// PreviousSecretExpiresAt is set while a rotated-out secret still signs.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
}

// Created is an endpoint with its secret: only create and rotate return it.
type Created struct {
	Endpoint
	Secret string `json:"secret"`
}

// Target is what the relay needs to deliver to an active endpoint.
type Target struct {
	ID    string
	Type  string       // TypeWebhook, TypeNATS, TypeAMQP or TypeKafka
	NATS  *NATSConfig  // opened: real credentials
	AMQP  *AMQPConfig  // opened: real credentials
	Kafka *KafkaConfig // opened: real credentials
	// StoreID is the store's id (config store_id): a Kafka record's key.
	StoreID string
	URL     string
	Headers map[string]string // opened: the real values
	// Keys sign each request: the current secret, then the previous one
	// while its overlap lasts.
	Keys      []Key
	RateLimit RateLimit
	Ordering  string
	// FailingSince is when the current run of failures began (zero when
	// the last attempt succeeded); Alerted is true when an operational
	// event went out since the last success.
	FailingSince time.Time
	Alerted      bool

	// u is URL parsed when the target was loaded, while URL still reads
	// uRaw: the sender then need not parse it for every request.
	u    *url.URL
	uRaw string
}

// parsedURL returns t's URL parsed and shape-checked (parseURL), from the
// copy made when t was loaded when URL has not changed since.
func (t *Target) parsedURL() (*url.URL, error) {
	if t.u != nil && t.uRaw == t.URL {
		return t.u, nil
	}
	return parseURL(t.URL)
}

// Options configure Endpoints. Zero values take the defaults noted.
type Options struct {
	// MaxEndpoints caps how many endpoints exist. Default 16.
	MaxEndpoints int
	// RotationOverlap is how long a rotated-out secret keeps signing.
	// Default 24 h.
	RotationOverlap time.Duration
	// PingTimeout bounds the validation ping. Default 10 s.
	PingTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// StoreID is the store's id (config store_id), carried by every event.
	StoreID string
}

// Endpoints manages webhook endpoints in the store.
type Endpoints struct {
	db      *store.DB
	master  *masterkey.Key
	sender  *Sender
	opts    Options
	version atomic.Int64
}

// New returns Endpoints over db, sealing secrets with master and pinging
// through sender.
func New(db *store.DB, master *masterkey.Key, sender *Sender, opts Options) *Endpoints {
	if db == nil || master == nil || sender == nil {
		panic("webhook: db, master key and sender are required")
	}
	if opts.MaxEndpoints <= 0 {
		opts.MaxEndpoints = 16
	}
	if opts.RotationOverlap <= 0 {
		opts.RotationOverlap = 24 * time.Hour
	}
	if opts.PingTimeout <= 0 {
		opts.PingTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Endpoints{db: db, master: master, sender: sender, opts: opts}
}

// StoreID returns the store id every event carries ("" when unset).
func (s *Endpoints) StoreID() string { return s.opts.StoreID }

// Sender returns the sender endpoints are pinged and delivered through.
func (s *Endpoints) Sender() *Sender { return s.sender }

// Version changes whenever an endpoint does; the relay reloads its
// targets when it sees a new value.
func (s *Endpoints) Version() int64 { return s.version.Load() }

func (s *Endpoints) changed() { s.version.Add(1) }

// NewParams describe an endpoint to create.
type NewParams struct {
	URL         string
	Events      []string
	Description string
	Category    string
	Headers     map[string]string
	Metadata    map[string]string
	Status      string // "" is active
	RateLimit   RateLimit
	Ordering    string // "" is none
	Type        string // "" is webhook
	NATS        *NATSConfig
	AMQP        *AMQPConfig
	Kafka       *KafkaConfig
	// IdemScope, IdemKey and IdemHash record the creating request's
	// Idempotency-Key on the row (optional).
	IdemScope string
	IdemKey   string
	IdemHash  []byte
}

// Create validates p, pings the URL with a signed ping under the new
// secret, and saves the endpoint. A request repeating an Idempotency-Key
// gets the first endpoint back with replayed true. Errors: *FieldError,
// ErrLimitReached, *PingError, ErrIdempotencyMismatch.
func (s *Endpoints) Create(ctx context.Context, p NewParams) (c Created, replayed bool, err error) {
	if p.Status == "" {
		p.Status = StatusActive
	}
	if p.Ordering == "" {
		p.Ordering = OrderingNone
	}
	if p.Type == "" {
		p.Type = TypeWebhook
	}
	pd := dest{NATS: p.NATS, AMQP: p.AMQP, Kafka: p.Kafka}
	if err := s.validateType(p.Type, p.URL, pd); err != nil {
		return Created{}, false, err
	}
	p.RateLimit = p.RateLimit.withDefaults()
	if err := s.validate(p.URL, p.Events, p.Description, p.Category, p.Headers, p.Metadata, p.Status); err != nil {
		return Created{}, false, err
	}
	if err := validateControls(p.RateLimit, p.Ordering); err != nil {
		return Created{}, false, err
	}
	if p.IdemKey != "" {
		c, err := s.replay(ctx, p)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return c, err == nil, err
		}
	}
	var n int
	if err := s.db.Read.QueryRowContext(ctx, "SELECT COUNT(*) FROM webhook_endpoints").Scan(&n); err != nil {
		return Created{}, false, fmt.Errorf("count endpoints: %w", err)
	}
	if n >= s.opts.MaxEndpoints {
		return Created{}, false, ErrLimitReached
	}
	id := "we_" + randomText(12)
	secret := NewSecret()
	key, _ := ParseKey(secret)
	if r := s.Ping(ctx, Target{ID: id, Type: p.Type, NATS: p.NATS, AMQP: p.AMQP, Kafka: p.Kafka, URL: p.URL, Headers: p.Headers, Keys: []Key{key}}); !r.OK() {
		s.sender.drop(id)
		return Created{}, false, &PingError{Result: r}
	}
	now := s.opts.Now().UTC().Truncate(time.Millisecond)
	c = Created{Endpoint: Endpoint{
		ID: id, URL: p.URL, Events: orEmpty(p.Events), Description: p.Description, Category: p.Category,
		Headers: maskHeaders(p.Headers), Metadata: orEmptyMap(p.Metadata), Status: p.Status,
		RateLimit: p.RateLimit, Ordering: p.Ordering, Type: p.Type, CreatedAt: now, UpdatedAt: now,
	}, Secret: secret}
	c.setDest(pd.masked())
	if p.Status == StatusDisabled {
		c.DisabledReason = "manual"
	}
	destPlain, destSealed := s.destColumns(id, pd)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM webhook_endpoints").Scan(&n); err != nil {
			return fmt.Errorf("count endpoints: %w", err)
		}
		if n >= s.opts.MaxEndpoints {
			return ErrLimitReached
		}
		var scope, ikey any
		if p.IdemKey != "" {
			scope, ikey = p.IdemScope, p.IdemKey
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints
			(id, url, events, description, category, headers, headers_sealed, metadata, status, disabled_reason,
			 rate_per_second, rate_burst, ordering, type, dest_config, dest_sealed,
			 secret_sealed, idem_scope, idem_key, idem_hash, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, c.URL, mustJSON(c.Events), c.Description, c.Category, mustJSON(c.Headers), s.sealHeaders(id, p.Headers),
			mustJSON(c.Metadata), c.Status, c.DisabledReason, c.RateLimit.PerSecond, c.RateLimit.Burst, c.Ordering,
			c.Type, destPlain, destSealed,
			s.master.Seal([]byte(secret), aad(id, "secret")),
			scope, ikey, p.IdemHash, store.Millis(now), store.Millis(now))
		if err != nil {
			return fmt.Errorf("insert endpoint: %w", err)
		}
		return nil
	})
	var se sqlite3.Error
	if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique && p.IdemKey != "" {
		// A concurrent request with the same key won the race.
		c, err := s.replay(ctx, p)
		return c, err == nil, err
	}
	if err != nil {
		s.sender.drop(id)
		return Created{}, false, err
	}
	s.changed()
	return c, false, nil
}

// replay answers a repeated create from the row holding its key.
func (s *Endpoints) replay(ctx context.Context, p NewParams) (Created, error) {
	var hash []byte
	row := s.db.Write.QueryRowContext(ctx, "SELECT "+endpointCols+", secret_sealed, idem_hash FROM webhook_endpoints WHERE idem_scope = ? AND idem_key = ?",
		p.IdemScope, p.IdemKey)
	var sealed []byte
	ep, err := scanEndpoint(row, &sealed, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return Created{}, ErrNotFound
	}
	if err != nil {
		return Created{}, fmt.Errorf("find endpoint by idempotency key: %w", err)
	}
	if string(hash) != string(p.IdemHash) {
		return Created{}, ErrIdempotencyMismatch
	}
	secret, err := s.master.Open(sealed, aad(ep.ID, "secret"))
	if err != nil {
		return Created{}, fmt.Errorf("open secret of %s: %w", ep.ID, err)
	}
	return Created{Endpoint: ep, Secret: string(secret)}, nil
}

// Ping sends a signed ping event to t and returns the result.
func (s *Endpoints) Ping(ctx context.Context, t Target) Result {
	ctx, cancel := context.WithTimeout(ctx, s.opts.PingTimeout)
	defer cancel()
	now := s.opts.Now()
	id := NewEventID(now)
	data, _ := json.Marshal(map[string]string{"endpoint_id": t.ID, "url": t.URL})
	body := AppendBody(nil, &Envelope{Event: "ping", EntryID: id, Time: now, Attempt: 1, MaxAttempts: 1, StoreID: s.opts.StoreID}, data)
	t.StoreID = s.opts.StoreID
	return s.sender.Send(ctx, t, Message{ID: id, Body: body, Time: now})
}

// List returns every endpoint, oldest first.
func (s *Endpoints) List(ctx context.Context) ([]Endpoint, error) {
	rows, err := s.db.Read.QueryContext(ctx, "SELECT "+endpointCols+" FROM webhook_endpoints ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	defer rows.Close()
	eps := []Endpoint{}
	for rows.Next() {
		ep, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("list endpoints: %w", err)
		}
		eps = append(eps, ep)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	return eps, nil
}

// Get returns one endpoint. Returns ErrNotFound if there is none.
func (s *Endpoints) Get(ctx context.Context, id string) (Endpoint, error) {
	ep, err := scanEndpoint(s.db.Read.QueryRowContext(ctx, "SELECT "+endpointCols+" FROM webhook_endpoints WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Endpoint{}, ErrNotFound
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	return ep, nil
}

// Patch holds the fields of an update; nil fields are left as they are.
type Patch struct {
	URL         *string
	Events      *[]string
	Description *string
	Category    *string
	Headers     *map[string]string
	Metadata    *map[string]string
	Status      *string
	RateLimit   *RateLimit
	Ordering    *string
	NATS        *NATSConfig  // a nats endpoint's whole destination
	AMQP        *AMQPConfig  // an amqp endpoint's whole destination
	Kafka       *KafkaConfig // a kafka endpoint's whole destination
}

// Update applies p. A new URL is pinged first, signed with the current
// secret. Setting status active clears a disabled reason (such as "gone"
// after a 410) and the circuit breaker's failure run; pending deliveries
// then resume. New headers replace the old ones, except that a value sent
// back masked as the API showed it keeps the stored value. Errors:
// ErrNotFound, *FieldError, *PingError.
func (s *Endpoints) Update(ctx context.Context, id string, p Patch) (Endpoint, error) {
	var (
		sealed, destSealed []byte
		plain, destConfig  string
	)
	ep, err := scanEndpoint(s.db.Read.QueryRowContext(ctx, "SELECT "+endpointCols+", headers_sealed, headers, dest_config, dest_sealed FROM webhook_endpoints WHERE id = ?", id),
		&sealed, &plain, &destConfig, &destSealed)
	if errors.Is(err, sql.ErrNoRows) {
		return Endpoint{}, ErrNotFound
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("get endpoint %s: %w", id, err)
	}
	headers, err := s.openHeaders(id, sealed, plain)
	if err != nil {
		return Endpoint{}, err
	}
	d, err := s.openDest(id, ep.Type, destConfig, destSealed)
	if err != nil {
		return Endpoint{}, err
	}
	newDest := p.NATS != nil || p.AMQP != nil || p.Kafka != nil
	if newDest {
		d = dest{NATS: p.NATS, AMQP: p.AMQP, Kafka: p.Kafka}.keepMasked(d)
	}
	if p.URL != nil {
		ep.URL = *p.URL
	}
	if p.Events != nil {
		ep.Events = orEmpty(*p.Events)
	}
	if p.Description != nil {
		ep.Description = *p.Description
	}
	if p.Category != nil {
		ep.Category = *p.Category
	}
	if p.Headers != nil {
		headers = keepMasked(orEmptyMap(*p.Headers), headers)
	}
	if p.Metadata != nil {
		ep.Metadata = orEmptyMap(*p.Metadata)
	}
	if p.RateLimit != nil {
		ep.RateLimit = p.RateLimit.withDefaults()
	}
	if p.Ordering != nil {
		ep.Ordering = *p.Ordering
	}
	reenabled := false
	if p.Status != nil && *p.Status != ep.Status {
		ep.Status = *p.Status
		ep.DisabledReason = ""
		if ep.Status == StatusDisabled {
			ep.DisabledReason = "manual"
		} else {
			reenabled = true
			ep.FailingSince = nil
		}
	}
	if err := s.validate(ep.URL, ep.Events, ep.Description, ep.Category, headers, ep.Metadata, ep.Status); err != nil {
		return Endpoint{}, err
	}
	if err := validateControls(ep.RateLimit, ep.Ordering); err != nil {
		return Endpoint{}, err
	}
	if err := s.validateType(ep.Type, ep.URL, d); err != nil {
		return Endpoint{}, err
	}
	if p.URL != nil || newDest {
		t, err := s.Target(ctx, id)
		if err != nil {
			return Endpoint{}, err
		}
		t.URL, t.Headers, t.NATS, t.AMQP, t.Kafka = ep.URL, headers, d.NATS, d.AMQP, d.Kafka
		if r := s.Ping(ctx, t); !r.OK() {
			return Endpoint{}, &PingError{Result: r}
		}
	}
	ep.Headers = maskHeaders(headers)
	ep.UpdatedAt = s.opts.Now().UTC().Truncate(time.Millisecond)
	q := `UPDATE webhook_endpoints SET url = ?, events = ?, description = ?, category = ?,
		metadata = ?, status = ?, disabled_reason = ?, rate_per_second = ?, rate_burst = ?, ordering = ?, updated_at = ?`
	args := []any{ep.URL, mustJSON(ep.Events), ep.Description, ep.Category, mustJSON(ep.Metadata),
		ep.Status, ep.DisabledReason, ep.RateLimit.PerSecond, ep.RateLimit.Burst, ep.Ordering, store.Millis(ep.UpdatedAt)}
	if p.Headers != nil {
		// Only a request that sets headers rewrites them: the sealed
		// value changes, the plaintext never reaches the store.
		q += ", headers = ?, headers_sealed = ?"
		args = append(args, mustJSON(ep.Headers), s.sealHeaders(id, headers))
	}
	if reenabled {
		q += ", failing_since = NULL"
	}
	if newDest {
		dp, ds := s.destColumns(id, d)
		q += ", dest_config = ?, dest_sealed = ?"
		args = append(args, dp, ds)
	}
	ep.setDest(d.masked())
	res, err := s.db.Write.ExecContext(ctx, q+" WHERE id = ?", append(args, id)...)
	if err != nil {
		return Endpoint{}, fmt.Errorf("update endpoint %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Endpoint{}, ErrNotFound
	}
	s.changed()
	return ep, nil
}

// Delete removes an endpoint with its deliveries and their attempts.
// Returns ErrNotFound if there is none.
func (s *Endpoints) Delete(ctx context.Context, id string) error {
	res, err := s.db.Write.ExecContext(ctx, "DELETE FROM webhook_endpoints WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("delete endpoint %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	s.sender.drop(id)
	s.changed()
	return nil
}

// RotateSecret makes a new secret and returns it; the old one keeps
// signing beside it for Options.RotationOverlap. A secret rotated out
// earlier and still overlapping is dropped. Returns ErrNotFound.
func (s *Endpoints) RotateSecret(ctx context.Context, id string) (Created, error) {
	var c Created
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var sealed []byte
		ep, err := scanEndpoint(tx.QueryRowContext(ctx, "SELECT "+endpointCols+", secret_sealed FROM webhook_endpoints WHERE id = ?", id), &sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("read endpoint %s: %w", id, err)
		}
		old, err := s.master.Open(sealed, aad(id, "secret"))
		if err != nil {
			return fmt.Errorf("open secret of %s: %w", id, err)
		}
		now := s.opts.Now().UTC().Truncate(time.Millisecond)
		exp := now.Add(s.opts.RotationOverlap)
		secret := NewSecret()
		_, err = tx.ExecContext(ctx, `UPDATE webhook_endpoints SET secret_sealed = ?, prev_secret_sealed = ?,
			prev_expires_at = ?, updated_at = ? WHERE id = ?`,
			s.master.Seal([]byte(secret), aad(id, "secret")), s.master.Seal(old, aad(id, "prev")),
			store.Millis(exp), store.Millis(now), id)
		if err != nil {
			return fmt.Errorf("rotate secret of %s: %w", id, err)
		}
		ep.UpdatedAt, ep.PreviousSecretExpiresAt = now, &exp
		c = Created{Endpoint: ep, Secret: secret}
		return nil
	})
	if err != nil {
		return Created{}, err
	}
	s.changed()
	return c, nil
}

const endpointCols = `id, type, url, events, description, category, headers, metadata, status, disabled_reason,
	rate_per_second, rate_burst, ordering, failing_since, dest_config, dest_sealed IS NOT NULL,
	prev_expires_at, created_at, updated_at`

func scanEndpoint(sc interface{ Scan(...any) error }, extra ...any) (Endpoint, error) {
	var (
		ep                        Endpoint
		events, headers, metadata string
		prevExp, failing          sql.NullInt64
		created, updated          int64
		destConfig                string
		hasCreds                  bool
	)
	dest := append([]any{&ep.ID, &ep.Type, &ep.URL, &events, &ep.Description, &ep.Category, &headers, &metadata, &ep.Status,
		&ep.DisabledReason, &ep.RateLimit.PerSecond, &ep.RateLimit.Burst, &ep.Ordering, &failing, &destConfig, &hasCreds,
		&prevExp, &created, &updated}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return Endpoint{}, err
	}
	if err := errors.Join(json.Unmarshal([]byte(events), &ep.Events), json.Unmarshal([]byte(headers), &ep.Headers),
		json.Unmarshal([]byte(metadata), &ep.Metadata)); err != nil {
		return Endpoint{}, fmt.Errorf("decode endpoint %s: %w", ep.ID, err)
	}
	// Masking on read too: a row from before sealing (see
	// SealStoredHeaders) must not show its values either.
	ep.Headers = maskHeaders(ep.Headers)
	ep.CreatedAt, ep.UpdatedAt = store.FromMillis(created), store.FromMillis(updated)
	if failing.Valid {
		t := store.FromMillis(failing.Int64)
		ep.FailingSince = &t
	}
	d, err := viewDest(ep.ID, ep.Type, destConfig, hasCreds)
	if err != nil {
		return Endpoint{}, err
	}
	ep.setDest(d)
	if prevExp.Valid && time.Now().Before(store.FromMillis(prevExp.Int64)) {
		t := store.FromMillis(prevExp.Int64)
		ep.PreviousSecretExpiresAt = &t
	}
	return ep, nil
}

// setDest sets ep's destination fields from d.
func (ep *Endpoint) setDest(d dest) { ep.NATS, ep.AMQP, ep.Kafka = d.NATS, d.AMQP, d.Kafka }
