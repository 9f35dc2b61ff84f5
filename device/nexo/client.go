package nexo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
)

// Errors of the client.
var (
	// ErrRefused wraps an answer in which the terminal refused the request
	// itself ({"errors":[…]}: bad crypto, bad format).
	ErrRefused = errors.New("nexo: terminal refused the request")
	// ErrInProgress means TransactionStatus found the transaction still
	// running; ask again later.
	ErrInProgress = errors.New("nexo: transaction still in progress")
	// ErrNoReference is returned by Reverse: nexo voids by the terminal's
	// reference (ReverseRef), not by a receipt number.
	ErrNoReference = errors.New("nexo: a reversal needs the terminal's transaction reference")
)

// Options configures a Client. ID, Addr, POIID, Key and Trust.Roots are
// required.
type Options struct {
	ID       string // device id, e.g. "t2"
	Addr     string // tls://host[:8443], https://host[:8443] or host[:port]
	POIID    string // [model]-[serial], e.g. V400m-324688179
	SaleID   string // this POS system's id in every header; default "posgate"
	Currency string // default "EUR"
	Key      *Key
	Trust    Trust
	// RequestTimeout bounds one exchange; default 150 s, above the
	// terminal's own 120 s processing time-out, so a slow approval is not
	// cut off and lost.
	RequestTimeout time.Duration
	// QueryTimeout bounds an Abort, TransactionStatus or Diagnosis
	// exchange, which the terminal answers at once; default 15 s.
	QueryTimeout time.Duration
	// StatusWait is how long a lost answer is asked for with
	// TransactionStatus before the call gives up with ErrOutcomeUnknown;
	// default 130 s. StatusEvery is the gap between the questions; default 2 s.
	StatusWait, StatusEvery time.Duration
	// HealthEvery is the gap between Diagnosis requests Run sends while
	// the terminal is idle; default 30 s (5 s while it is unreachable).
	HealthEvery time.Duration
	Log         zerolog.Logger
	Now         func() time.Time
	// DialContext replaces the TCP dialer (tests).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client is a nexo terminal over the Adyen local Terminal API. It
// implements device.Terminal and device.RefReverser.
type Client struct {
	opts Options
	url  string
	http *http.Client
	ids  serviceIDs
	log  zerolog.Logger
	// serviceID issues the header's ServiceID; tests replace it.
	serviceID func() string

	mu sync.Mutex // serializes calls, except Abort

	stateMu  sync.Mutex            // guards the fields below
	running  string                // ServiceID of the running payment or reversal
	lastSale string                // ServiceID of the last payment sent
	handler  device.TxEventHandler // of the running payment, for display notifications
	lastErr  error

	online atomic.Bool
}

var (
	_ device.Terminal    = (*Client)(nil)
	_ device.RefReverser = (*Client)(nil)
)

// New returns a client; it dials nothing until the first call.
func New(o Options) (*Client, error) {
	if o.Key == nil || o.POIID == "" || o.Addr == "" || o.Trust.Roots == nil {
		return nil, errors.New("nexo: Addr, POIID, Key and Trust.Roots are required")
	}
	if o.SaleID == "" {
		o.SaleID = "posgate"
	}
	if o.Currency == "" {
		o.Currency = "EUR"
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = 150 * time.Second
	}
	if o.QueryTimeout == 0 {
		o.QueryTimeout = 15 * time.Second
	}
	if o.StatusWait == 0 {
		o.StatusWait = 130 * time.Second
	}
	if o.StatusEvery == 0 {
		o.StatusEvery = 2 * time.Second
	}
	if o.HealthEvery == 0 {
		o.HealthEvery = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Trust.POIID == "" {
		o.Trust.POIID = o.POIID
	}
	url, err := endpoint(o.Addr)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy from the environment
		TLSClientConfig:     o.Trust.TLSConfig(),
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = d.DialContext
	if o.DialContext != nil {
		tr.DialContext = o.DialContext
	}
	c := &Client{opts: o, url: url, http: &http.Client{Transport: tr}, log: o.Log.With().Str(logkey.DeviceID, o.ID).Logger()}
	c.ids.now = o.Now
	c.serviceID = c.ids.next
	return c, nil
}

// endpoint turns the configured address into the terminal's URL.
func endpoint(addr string) (string, error) {
	hostport := addr
	for _, p := range []string{"tls://", "https://"} {
		hostport = strings.TrimPrefix(hostport, p)
	}
	hostport = strings.TrimSuffix(strings.TrimSuffix(hostport, "/nexo/"), "/")
	if hostport == "" || strings.ContainsAny(hostport, "/?#@") {
		return "", fmt.Errorf("nexo: bad terminal address %q, want tls://host[:8443]", addr)
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		hostport = net.JoinHostPort(hostport, "8443")
	}
	return "https://" + hostport + "/nexo/", nil
}

// Key is the terminal's derived key (for its notification listener).
func (c *Client) Key() *Key { return c.opts.Key }

// LastError is why the terminal was last found unreachable; nil while
// it answers.
func (c *Client) LastError() error {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	return c.lastErr
}

// Online reports whether the last exchange reached the terminal.
func (c *Client) Online() bool { return c.online.Load() }

// Run checks the terminal's health with Diagnosis while no call is
// running, until ctx ends: every HealthEvery, or every 5 s while the
// terminal is unreachable.
func (c *Client) Run(ctx context.Context) {
	for {
		every := c.opts.HealthEvery
		if !c.online.Load() {
			every = min(every, 5*time.Second)
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if c.mu.TryLock() {
			_, err := c.diagnosis(ctx)
			c.mu.Unlock()
			if err != nil && ctx.Err() == nil {
				c.log.Debug().Err(err).Msg("terminal health check failed")
			}
		}
	}
}

func (c *Client) header(category string) Header {
	return Header{ProtocolVersion: ProtocolVersion, MessageClass: ClassService, MessageCategory: category,
		MessageType: TypeRequest, ServiceID: c.serviceID(), SaleID: c.opts.SaleID, POIID: c.opts.POIID}
}

// errSent is an exchange that failed after the request was written: the
// terminal may be acting on it.
type errSent struct{ err error }

func (e *errSent) Error() string { return e.err.Error() }
func (e *errSent) Unwrap() error { return e.err }

// exchange sends req and returns the terminal's response; nil with no
// error for an empty answer (Abort). A failure before the request left
// wraps device.ErrOffline; one after it is an *errSent.
func (c *Client) exchange(ctx context.Context, req *Request) (*Response, error) {
	plain, err := json.Marshal(RequestMessage{SaleToPOIRequest: req})
	if err != nil {
		return nil, fmt.Errorf("encode %s request: %w", req.MessageHeader.MessageCategory, err)
	}
	body, err := Seal(c.opts.Key, WrapRequest, &req.MessageHeader, plain, nil)
	if err != nil {
		return nil, err
	}
	timeout := c.opts.QueryTimeout
	if cat := req.MessageHeader.MessageCategory; cat == CategoryPayment || cat == CategoryReversal {
		timeout = c.opts.RequestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("nexo request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	cat := req.MessageHeader.MessageCategory
	c.log.Debug().Str("category", cat).Str("service_id", req.MessageHeader.ServiceID).Msg("nexo request")
	resp, err := c.http.Do(hreq)
	if err != nil {
		if !wrote.Load() {
			c.setOnline(false, err)
			return nil, fmt.Errorf("send %s to %s: %w: %w", cat, c.opts.ID, device.ErrOffline, err)
		}
		return nil, &errSent{fmt.Errorf("%s on %s: %w: %w", cat, c.opts.ID, device.ErrDisconnected, err)}
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &errSent{fmt.Errorf("read %s answer from %s: %w: %w", cat, c.opts.ID, device.ErrDisconnected, err)}
	}
	c.setOnline(true, nil)
	if refused := refusal(rb); refused != "" {
		return nil, fmt.Errorf("%s on %s: %w: HTTP %d: %s", cat, c.opts.ID, ErrRefused, resp.StatusCode, refused)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &errSent{fmt.Errorf("%s on %s: HTTP %d", cat, c.opts.ID, resp.StatusCode)}
	}
	if len(bytes.TrimSpace(rb)) == 0 || bytes.Equal(bytes.TrimSpace(rb), []byte("{}")) {
		return nil, nil
	}
	if !isSealed(rb) {
		// posgate always encrypts; a clear answer is not from the terminal
		// it shares a key with.
		return nil, &errSent{fmt.Errorf("%s on %s: %w", cat, c.opts.ID, &FormatError{Reason: "answer is not encrypted"})}
	}
	_, pt, err := Open(Single(c.opts.Key), rb)
	if err != nil {
		return nil, &errSent{fmt.Errorf("%s answer from %s: %w", cat, c.opts.ID, err)}
	}
	var m ResponseMessage
	if err := json.Unmarshal(pt, &m); err != nil || m.SaleToPOIResponse == nil {
		return nil, &errSent{fmt.Errorf("%s answer from %s: %w", cat, c.opts.ID, &FormatError{Reason: fmt.Sprint(err)})}
	}
	r := m.SaleToPOIResponse
	h := r.MessageHeader
	if h.MessageCategory != cat || h.ServiceID != req.MessageHeader.ServiceID || h.POIID != c.opts.POIID {
		return nil, &errSent{fmt.Errorf("%s answer from %s: %w", cat, c.opts.ID, &FormatError{
			Reason: fmt.Sprintf("answer is for %s %s from %s", h.MessageCategory, h.ServiceID, h.POIID)})}
	}
	return r, nil
}

// refusal returns the terminal's error texts if body is its refusal
// ({"errors": ["Nexo Service: crypto error (3)"], "ServiceID": "-NULL-"}).
func refusal(body []byte) string {
	if !bytes.Contains(body, []byte(`"errors"`)) {
		return ""
	}
	var e struct {
		Errors []string `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return strings.Join(e.Errors, "; ")
}

func (c *Client) setOnline(on bool, err error) {
	was := c.online.Swap(on)
	c.stateMu.Lock()
	c.lastErr = err
	c.stateMu.Unlock()
	if was != on {
		if on {
			c.log.Info().Msg("terminal reachable")
		} else {
			c.log.Warn().Err(err).Msg("terminal unreachable")
		}
	}
}

func (c *Client) setRunning(sid string) {
	c.stateMu.Lock()
	c.running = sid
	c.stateMu.Unlock()
}

func (c *Client) timestamp() string {
	return c.opts.Now().UTC().Format("2006-01-02T15:04:05.000Z")
}
