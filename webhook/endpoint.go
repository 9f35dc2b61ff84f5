package webhook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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
	ID             string            `json:"id"`
	URL            string            `json:"url"`
	Events         []string          `json:"events"`
	Description    string            `json:"description"`
	Category       string            `json:"category"`
	Headers        map[string]string `json:"headers"`
	Metadata       map[string]string `json:"metadata"`
	Status         string            `json:"status"`
	DisabledReason string            `json:"disabled_reason,omitempty"`
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
	ID      string
	URL     string
	Headers map[string]string
	// Keys sign each request: the current secret, then the previous one
	// while its overlap lasts.
	Keys []Key
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
	if err := s.validate(p.URL, p.Events, p.Description, p.Category, p.Headers, p.Metadata, p.Status); err != nil {
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
	if r := s.Ping(ctx, Target{ID: id, URL: p.URL, Headers: p.Headers, Keys: []Key{key}}); !r.OK() {
		return Created{}, false, &PingError{Result: r}
	}
	now := s.opts.Now().UTC().Truncate(time.Millisecond)
	c = Created{Endpoint: Endpoint{
		ID: id, URL: p.URL, Events: orEmpty(p.Events), Description: p.Description, Category: p.Category,
		Headers: orEmptyMap(p.Headers), Metadata: orEmptyMap(p.Metadata), Status: p.Status,
		CreatedAt: now, UpdatedAt: now,
	}, Secret: secret}
	if p.Status == StatusDisabled {
		c.DisabledReason = "manual"
	}
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
			(id, url, events, description, category, headers, metadata, status, disabled_reason,
			 secret_sealed, idem_scope, idem_key, idem_hash, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, c.URL, mustJSON(c.Events), c.Description, c.Category, mustJSON(c.Headers), mustJSON(c.Metadata),
			c.Status, c.DisabledReason, s.master.Seal([]byte(secret), aad(id, "secret")),
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
	id := "evt_" + randomText(16)
	data, _ := json.Marshal(map[string]string{"endpoint_id": t.ID, "url": t.URL})
	body := AppendBody(nil, "ping", id, now, 1, 1, "", data)
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
}

// Update applies p. A new URL is pinged first, signed with the current
// secret. Setting status active clears a disabled reason (such as "gone"
// after a 410); pending deliveries then resume. Errors: ErrNotFound,
// *FieldError, *PingError.
func (s *Endpoints) Update(ctx context.Context, id string, p Patch) (Endpoint, error) {
	ep, err := s.Get(ctx, id)
	if err != nil {
		return Endpoint{}, err
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
		ep.Headers = orEmptyMap(*p.Headers)
	}
	if p.Metadata != nil {
		ep.Metadata = orEmptyMap(*p.Metadata)
	}
	if p.Status != nil && *p.Status != ep.Status {
		ep.Status = *p.Status
		ep.DisabledReason = ""
		if ep.Status == StatusDisabled {
			ep.DisabledReason = "manual"
		}
	}
	if err := s.validate(ep.URL, ep.Events, ep.Description, ep.Category, ep.Headers, ep.Metadata, ep.Status); err != nil {
		return Endpoint{}, err
	}
	if p.URL != nil {
		t, err := s.Target(ctx, id)
		if err != nil {
			return Endpoint{}, err
		}
		t.URL, t.Headers = ep.URL, ep.Headers
		if r := s.Ping(ctx, t); !r.OK() {
			return Endpoint{}, &PingError{Result: r}
		}
	}
	ep.UpdatedAt = s.opts.Now().UTC().Truncate(time.Millisecond)
	res, err := s.db.Write.ExecContext(ctx, `UPDATE webhook_endpoints SET url = ?, events = ?, description = ?, category = ?,
		headers = ?, metadata = ?, status = ?, disabled_reason = ?, updated_at = ? WHERE id = ?`,
		ep.URL, mustJSON(ep.Events), ep.Description, ep.Category, mustJSON(ep.Headers), mustJSON(ep.Metadata),
		ep.Status, ep.DisabledReason, store.Millis(ep.UpdatedAt), id)
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

const endpointCols = `id, url, events, description, category, headers, metadata, status, disabled_reason,
	prev_expires_at, created_at, updated_at`

func scanEndpoint(sc interface{ Scan(...any) error }, extra ...any) (Endpoint, error) {
	var (
		ep                        Endpoint
		events, headers, metadata string
		prevExp                   sql.NullInt64
		created, updated          int64
	)
	dest := append([]any{&ep.ID, &ep.URL, &events, &ep.Description, &ep.Category, &headers, &metadata, &ep.Status,
		&ep.DisabledReason, &prevExp, &created, &updated}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return Endpoint{}, err
	}
	if err := errors.Join(json.Unmarshal([]byte(events), &ep.Events), json.Unmarshal([]byte(headers), &ep.Headers),
		json.Unmarshal([]byte(metadata), &ep.Metadata)); err != nil {
		return Endpoint{}, fmt.Errorf("decode endpoint %s: %w", ep.ID, err)
	}
	ep.CreatedAt, ep.UpdatedAt = store.FromMillis(created), store.FromMillis(updated)
	if prevExp.Valid && time.Now().Before(store.FromMillis(prevExp.Int64)) {
		t := store.FromMillis(prevExp.Int64)
		ep.PreviousSecretExpiresAt = &t
	}
	return ep, nil
}
