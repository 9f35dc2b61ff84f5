package webhook_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posgate/posgate/webhook"
)

// BenchmarkSend: one signed 1 KiB delivery over a kept-alive loopback
// connection, as a relay worker sends it; allocs/op is the figure to
// watch (the receiver's share is in it too).
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	s := webhook.NewSender(loopbackOK)
	defer s.CloseIdleConnections()
	k, _ := webhook.ParseKey(webhook.NewSecret())
	t := webhook.Target{URL: srv.URL, Keys: []webhook.Key{k}}
	body := webhook.AppendBody(nil, &webhook.Envelope{Event: "invoice.created", EntryID: webhook.NewEventID(time.Now()),
		Time: time.Now(), Attempt: 1, MaxAttempts: 50}, []byte(`{"pad":"`+strings.Repeat("x", 1014)+`"}`))
	m := webhook.Message{ID: "evt_01JABCDEFGHJKMNPQRSTVWXYZ0", Body: body, Time: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if r := s.Send(context.Background(), t, m); !r.OK() {
			b.Fatalf("send: %+v", r)
		}
	}
}

// BenchmarkSign: the five signature headers of a 1 KiB body, one key.
func BenchmarkSign(b *testing.B) {
	k, _ := webhook.ParseKey(webhook.NewSecret())
	body := []byte(strings.Repeat("x", 1200))
	b.ReportAllocs()
	for b.Loop() {
		webhook.Sign(http.Header{}, "evt_01JABCDEFGHJKMNPQRSTVWXYZ0", time.Now(), body, []webhook.Key{k})
	}
}

// countingConn counts Write calls on a client connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A delivery leaves in one write, headers and body together, on a
// kept-alive connection: a body type the transport does not know to be
// in memory would cost a second write per request (and a second read at
// the receiver).
func TestSendOneWritePerRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	s := webhook.NewSender(loopbackOK)
	defer s.CloseIdleConnections()
	var writes, dials atomic.Int64
	s.Dialer().Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &writes}, nil
	}
	k, _ := webhook.ParseKey(webhook.NewSecret())
	body := []byte(`{"pad":"` + strings.Repeat("x", 1014) + `"}`)
	for i := range 5 {
		r := s.Send(context.Background(), webhook.Target{URL: srv.URL, Keys: []webhook.Key{k}},
			webhook.Message{ID: "evt_1", Body: body, Time: time.Now()})
		if !r.OK() {
			t.Fatalf("send %d: %+v", i, r)
		}
	}
	if got, want := writes.Load(), int64(5); got != want {
		t.Fatalf("writes=%d for 5 requests, want %d", got, want)
	}
	if got := dials.Load(); got != 1 {
		t.Fatalf("dials=%d, want 1 (keep-alive)", got)
	}
}

// A Worker bounds each attempt by Timeout as Send does (ClassTimeout,
// "context deadline exceeded"), re-arms the same bound for attempt after
// attempt without a stale one cutting a later attempt short, takes a
// fresh one after a timeout, and reports its context's end as canceled.
func TestWorkerTimeoutsAndReuse(t *testing.T) {
	var slow atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if slow.Load() {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	}))
	defer srv.Close()
	opts := loopbackOK
	opts.Timeout = 300 * time.Millisecond
	s := webhook.NewSender(opts)
	defer s.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := s.NewWorker(ctx)
	defer w.Close()
	k, _ := webhook.ParseKey(webhook.NewSecret())
	tg := webhook.Target{URL: srv.URL, Keys: []webhook.Key{k}}
	msg := webhook.Message{ID: "evt_1", Body: []byte(`{}`), Time: time.Now()}

	// Attempts spanning several timeouts in all, each well inside one.
	start := time.Now()
	for time.Since(start) < time.Second {
		if r := w.Send(tg, msg); !r.OK() {
			t.Fatalf("fast attempt after %v: %+v", time.Since(start), r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	slow.Store(true)
	r := w.Send(tg, msg)
	if r.Class != webhook.ClassTimeout || r.Err != context.DeadlineExceeded.Error() || r.Duration < opts.Timeout {
		t.Fatalf("slow attempt: %+v, want a timeout after %v", r, opts.Timeout)
	}
	if rs := s.Send(context.Background(), tg, msg); rs.Class != r.Class || rs.Err != r.Err {
		t.Fatalf("Send's timeout %q/%q, the Worker's %q/%q", rs.Class, rs.Err, r.Class, r.Err)
	}
	slow.Store(false)
	if r := w.Send(tg, msg); !r.OK() {
		t.Fatalf("attempt after a timeout: %+v", r)
	}
	cancel()
	if r := w.Send(tg, msg); r.Class != webhook.ClassCanceled {
		t.Fatalf("attempt after the context ended: %+v, want canceled", r)
	}
}

// A delivery carries the documented headers (docs/webhooks.md) and the
// framing ones, and no Accept-Encoding: the transport does not ask for
// gzip (one header less for every receiver to parse), so a response is
// recorded as its bytes came, even one a receiver compressed anyway.
func TestSendHeadersNoAcceptEncoding(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("stored as sent"))
	_ = zw.Close()
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Header.Clone()
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(gz.Bytes())
	}))
	defer srv.Close()
	s := webhook.NewSender(loopbackOK)
	defer s.CloseIdleConnections()
	k, _ := webhook.ParseKey(webhook.NewSecret())
	r := s.Send(context.Background(), webhook.Target{URL: srv.URL, Keys: []webhook.Key{k}},
		webhook.Message{ID: "evt_1", Body: []byte(`{}`), Time: time.Now()})
	if !r.OK() {
		t.Fatalf("send: %+v", r)
	}
	h := <-got
	var names []string
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	want := []string{"Content-Length", "Content-Type", "User-Agent", "Webhook-Id", "Webhook-Signature", "Webhook-Timestamp",
		"X-Webhook-Signature", "X-Webhook-Timestamp"}
	if !slices.Equal(names, want) {
		t.Fatalf("request headers %q, want %q (Host aside)", names, want)
	}
	if !bytes.Equal(r.Snippet, gz.Bytes()) {
		t.Fatalf("snippet %q, want the gzip bytes as sent %q", r.Snippet, gz.Bytes())
	}
}
