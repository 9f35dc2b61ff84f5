package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
