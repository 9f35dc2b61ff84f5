package nexo

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
)

// Notification is an event or display message a terminal posted.
type Notification struct {
	POIID   string
	Kind    string // "event" or "display"
	Event   string // EventToNotify, or the display's event (TENDER_CREATED, WAIT_FOR_PIN, …)
	Details string // EventDetails, or the display's text
	At      time.Time
}

// ListenerOptions configures a Listener. Cert, Key and POIID are required.
type ListenerOptions struct {
	Cert   tls.Certificate // the listener's own certificate, which the terminal is set up to trust
	Key    *Key            // the terminal's key: notifications are sealed like its responses
	POIID  string          // only this terminal's notifications are taken
	Notify func(Notification)
	Log    zerolog.Logger
}

// Listener takes the event and display notifications a terminal posts to
// the URL registered for it (Adyen "Event notifications", "Display
// notifications"). Every notification must be sealed with the terminal's
// key and name the terminal; anything else is refused and logged.
type Listener struct {
	opts ListenerOptions
	ln   net.Listener
	srv  *http.Server
}

// Listen binds addr now, so a clash fails at start.
func Listen(addr string, o ListenerOptions) (*Listener, error) {
	if o.Key == nil || o.POIID == "" || len(o.Cert.Certificate) == 0 {
		return nil, errors.New("nexo listener: Cert, Key and POIID are required")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("nexo listener: %w", err)
	}
	l := &Listener{opts: o, ln: ln}
	l.srv = &http.Server{Handler: http.HandlerFunc(l.handle), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{o.Cert}},
		ErrorLog:  log.New(io.Discard, "", 0)}
	return l, nil
}

// Addr is where it listens.
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Run serves until ctx ends.
func (l *Listener) Run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- l.srv.ServeTLS(l.ln, "", "") }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		l.srv.Shutdown(sctx)
		<-done
		return nil
	case err := <-done:
		return fmt.Errorf("nexo listener: %w", err)
	}
}

func (l *Listener) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return
	}
	n, err := ParseNotification(Single(l.opts.Key), l.opts.POIID, body)
	if err != nil {
		l.opts.Log.Warn().Err(err).Str("remote", r.RemoteAddr).Msg("nexo notification refused")
		http.Error(w, "refused", http.StatusBadRequest)
		return
	}
	n.At = time.Now()
	l.opts.Log.Debug().Str("kind", n.Kind).Str("event", n.Event).Msg("nexo notification")
	if l.opts.Notify != nil {
		l.opts.Notify(n)
	}
	io.WriteString(w, "[accepted]")
}

// ParseNotification opens a posted notification and checks it is poiID's.
func ParseNotification(keys Keys, poiID string, body []byte) (Notification, error) {
	if !isSealed(body) {
		return Notification{}, &FormatError{Reason: "notification is not encrypted"}
	}
	_, pt, err := Open(keys, body)
	if err != nil {
		return Notification{}, err
	}
	var m RequestMessage
	if err := json.Unmarshal(pt, &m); err != nil || m.SaleToPOIRequest == nil {
		return Notification{}, &FormatError{Reason: "not a SaleToPOIRequest"}
	}
	req := m.SaleToPOIRequest
	if req.MessageHeader.POIID != poiID {
		return Notification{}, &FormatError{Reason: "notification from " + req.MessageHeader.POIID}
	}
	n := Notification{POIID: poiID}
	switch {
	case req.EventNotification != nil:
		n.Kind, n.Event, n.Details = "event", req.EventNotification.EventToNotify, req.EventNotification.EventDetails
	case req.DisplayRequest != nil:
		n.Kind = "display"
		for _, d := range req.DisplayRequest.DisplayOutput {
			if pc := d.OutputContent.PredefinedContent; pc != nil {
				v, _ := url.ParseQuery(pc.ReferenceID)
				if n.Event = v.Get("event"); n.Event == "" {
					n.Event = pc.ReferenceID
				}
			}
			for _, t := range d.OutputContent.OutputText {
				n.Details = strings.TrimSpace(n.Details + " " + t.Text)
			}
		}
	default:
		return Notification{}, &FormatError{Reason: "neither EventNotification nor DisplayRequest"}
	}
	return n, nil
}

// unavailableEvents make a terminal unavailable until it reports back.
var unavailableEvents = map[string]bool{"OutOfOrder": true, "Shutdown": true, "BeginMaintenance": true, "NetworkDisconnected": true}

// Notify feeds a notification into the client's state: an event that
// takes the terminal out of service marks it offline until it answers
// again (or reports EndMaintenance/Initialised/NetworkConnected), and a
// display message during a payment reaches the payment's handler as
// intermediate status (what the terminal shows now).
func (c *Client) Notify(n Notification) {
	switch n.Kind {
	case "event":
		switch {
		case unavailableEvents[n.Event]:
			c.setOnline(false, fmt.Errorf("terminal reported %s %s", n.Event, n.Details))
		case n.Event == "EndMaintenance" || n.Event == "Initialised" || n.Event == "NetworkConnected":
			c.setOnline(true, nil)
		}
	case "display":
		c.stateMu.Lock()
		h := c.handler
		c.stateMu.Unlock()
		if h != nil {
			text := n.Event
			if n.Details != "" {
				text = n.Details
			}
			h(context.Background(), device.TxEvent{Kind: device.EventIntermediate, At: n.At, Text: text})
		}
	}
}
