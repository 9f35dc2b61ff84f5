package me

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posgate/posgate/fiscal"
)

// Official endpoints (docs/fiscal.md). posgate never dials one by
// itself: the operator pastes one into fiscal.service_url.
const (
	TestURL       = "https://efitest.tax.gov.me/fs-v1"
	ProductionURL = "https://efi.tax.gov.me/fs-v1"
)

// Classes of a failed exchange, for the retry policy.
const (
	// ClassOffline: no connection could be made (DNS, refused,
	// unreachable). The link is down: no attempt is spent.
	ClassOffline = fiscal.ClassOffline
	// ClassTemporary: the service was reached but did not answer in
	// time, answered 5xx, broke the connection or its answer, or sent a
	// 9xx fault. Retried on schedule.
	ClassTemporary = fiscal.ClassTemporary
	// ClassRejected: a client fault (codes below 900). Not retried until
	// someone fixes the cause and retries.
	ClassRejected = fiscal.ClassRejected
)

// ExchangeError is a failed exchange with the service.
type ExchangeError struct {
	Class      string
	HTTPStatus int
	Fault      *FaultError // for a fault answer
	Err        error
}

func (e *ExchangeError) Error() string {
	if e.Fault != nil {
		return e.Fault.Error()
	}
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("fiscal service: HTTP %d: %v", e.HTTPStatus, e.Err)
	}
	return "fiscal service: " + e.Err.Error()
}

func (e *ExchangeError) Unwrap() error { return e.Err }

// ClientOptions configure a Client.
type ClientOptions struct {
	// URL is the service endpoint (fiscal.service_url). Required.
	URL string
	// CAFile holds extra PEM roots trusted beside the system's
	// (fiscal.service_ca_file): a test service's, or the simulator's.
	CAFile string
	// Timeout bounds one exchange (fiscal.service_timeout). Default 10 s.
	Timeout time.Duration
	// Trusted, if not empty, are the only certificates whose signature
	// on an answer is accepted. Default: the certificate in the answer's
	// KeyInfo, checked for the signature only.
	Trusted []*x509.Certificate
	// DialContext replaces the dialer (tests guard addresses with it).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client posts signed envelopes to the service. It is safe for
// concurrent use.
type Client struct {
	opts  ClientOptions
	caPEM []byte // opts.CAFile's contents, checked by NewClient

	// The HTTP client is built at the first exchange (see httpClient).
	once  sync.Once
	built atomic.Pointer[http.Client]
}

// maxAnswer bounds an answer's size; the service's are a few kB.
const maxAnswer = 1 << 20

// NewClient returns a client for opts.URL, trusting the system roots
// plus opts.CAFile. It reads and checks opts.CAFile now; the system roots
// are loaded at the first exchange (see httpClient).
func NewClient(opts ClientOptions) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("me: no service URL")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	c := &Client{opts: opts}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read service CA file: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("service CA file %s: no PEM certificate", opts.CAFile)
		}
		c.caPEM = pem
	}
	return c, nil
}

// systemRoots is x509.SystemCertPool; tests count its calls.
var systemRoots = x509.SystemCertPool

// httpClient returns the HTTP client, building it at the first call.
// Loading the system roots parses every CA certificate of the system
// (about 3.7 MB allocated for some 150 certificates); done at start, that
// kept an idle daemon's resident memory 2.6 MiB higher (docs/performance.md).
func (c *Client) httpClient() *http.Client {
	c.once.Do(func() {
		roots, err := systemRoots()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		roots.AppendCertsFromPEM(c.caPEM) // checked by NewClient
		tr := &http.Transport{
			TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   c.opts.Timeout,
			ResponseHeaderTimeout: c.opts.Timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     false,
		}
		if c.opts.DialContext != nil {
			tr.DialContext = c.opts.DialContext
		} else {
			d := &net.Dialer{Timeout: c.opts.Timeout}
			tr.DialContext = d.DialContext
		}
		c.built.Store(&http.Client{Transport: tr, Timeout: c.opts.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }})
	})
	return c.built.Load()
}

// Close releases idle connections.
func (c *Client) Close() {
	if hc := c.built.Load(); hc != nil {
		hc.CloseIdleConnections()
	}
}

// Post sends one envelope with SOAPAction action and returns the
// answer's bytes (also for a fault, which comes with HTTP 500) and its
// parse. Errors are *ExchangeError.
func (c *Client) Post(ctx context.Context, action string, envelope []byte, want string) ([]byte, Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.URL, bytes.NewReader(envelope))
	if err != nil {
		return nil, Response{}, &ExchangeError{Class: ClassRejected, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+action+`"`)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, Response{}, &ExchangeError{Class: classifyNet(err), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return body, Response{}, &ExchangeError{Class: ClassTemporary, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("read answer: %w", err)}
	}
	r, perr := ParseResponse(body, want, c.opts.Trusted)
	var f *FaultError
	if errors.As(perr, &f) {
		class := ClassRejected
		if ServerCode(f.Code) || (f.FaultCode == "SERVER" && f.Code == "") {
			class = ClassTemporary
		}
		return body, Response{}, &ExchangeError{Class: class, HTTPStatus: resp.StatusCode, Fault: f, Err: f}
	}
	if resp.StatusCode >= 500 {
		return body, Response{}, &ExchangeError{Class: ClassTemporary, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("status %s", resp.Status)}
	}
	if perr != nil {
		// A broken or unsigned answer: the service may have registered
		// the invoice; a re-send with SubseqDelivType is safe.
		return body, Response{}, &ExchangeError{Class: ClassTemporary, HTTPStatus: resp.StatusCode, Err: perr}
	}
	if resp.StatusCode != http.StatusOK {
		return body, Response{}, &ExchangeError{Class: ClassTemporary, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("status %s", resp.Status)}
	}
	return body, r, nil
}

// classifyNet tells a link that is down (nothing connected) from a
// service that was reached and failed (timeout, reset, EOF mid-answer).
func classifyNet(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return ClassOffline
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return ClassOffline
	}
	return ClassTemporary
}

// SOAP actions of the WSDL's binding.
const (
	ActionRegisterInvoice     = "https://efi.tax.gov.me/fs/RegisterInvoice"
	ActionRegisterTCR         = "https://efi.tax.gov.me/fs/RegisterTCR"
	ActionRegisterCashDeposit = "https://efi.tax.gov.me/fs/RegisterCashDeposit"
)
