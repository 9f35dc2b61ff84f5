package webhook_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
