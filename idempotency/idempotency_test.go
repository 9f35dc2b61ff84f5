package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/posgate/posgate/idempotency"
	"github.com/posgate/posgate/store/storetest"
)

func TestBeginComplete(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	mk := storetest.MasterKey(t)
	s := idempotency.New(db, mk)
	hash, other := []byte("request-1"), []byte("request-2")

	resp, err := s.Begin(ctx, "key_a", "k1", hash)
	if resp != nil || err != nil {
		t.Fatalf("first Begin: %v %v, want a reservation", resp, err)
	}
	t.Run("ErrInProgress", func(t *testing.T) {
		if _, err := s.Begin(ctx, "key_a", "k1", hash); !errors.Is(err, idempotency.ErrInProgress) {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("ErrMismatchWhileRunning", func(t *testing.T) {
		if _, err := s.Begin(ctx, "key_a", "k1", other); !errors.Is(err, idempotency.ErrMismatch) {
			t.Fatalf("err=%v", err)
		}
	})
	t.Run("ScopedPerAPIKey", func(t *testing.T) {
		resp, err := s.Begin(ctx, "key_b", "k1", other)
		if resp != nil || err != nil {
			t.Fatalf("another API key's k1: %v %v", resp, err)
		}
		s.Release(ctx, "key_b", "k1")
	})
	if err := s.Complete(ctx, "key_a", "k1", idempotency.Response{Status: 201, ContentType: "application/json", Body: []byte(`{"id":1}`)}); err != nil {
		t.Fatal(err)
	}

	// A restart: a new Store on the same database replays the answer.
	s2 := idempotency.New(db, mk)
	resp, err = s2.Begin(ctx, "key_a", "k1", hash)
	if err != nil || resp == nil || resp.Status != 201 || string(resp.Body) != `{"id":1}` {
		t.Fatalf("replay after restart: %+v %v", resp, err)
	}
	if _, err := s2.Begin(ctx, "key_a", "k1", other); !errors.Is(err, idempotency.ErrMismatch) {
		t.Fatalf("different request after completion: %v", err)
	}
}

func TestReleaseAndExpiry(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	s := idempotency.New(db, storetest.MasterKey(t))
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })

	if _, err := s.Begin(ctx, "key", "k", []byte("h")); err != nil {
		t.Fatal(err)
	}
	s.Release(ctx, "key", "k")
	resp, err := s.Begin(ctx, "key", "k", []byte("h2"))
	if resp != nil || err != nil {
		t.Fatalf("after Release the key is free: %v %v", resp, err)
	}
	if err := s.Complete(ctx, "key", "k", idempotency.Response{Status: 200, Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(idempotency.TTL + time.Second)
	resp, err = s.Begin(ctx, "key", "k", []byte("h3"))
	if resp != nil || err != nil {
		t.Fatalf("after the TTL the key is free: %v %v", resp, err)
	}
}

// A wrong master key cannot read kept answers: they are sealed.
func TestSealedAnswers(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	s := idempotency.New(db, storetest.MasterKey(t))
	if _, err := s.Begin(ctx, "key", "k", []byte("h")); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, "key", "k", idempotency.Response{Status: 201, Body: []byte("sk_secret")}); err != nil {
		t.Fatal(err)
	}
	var body []byte
	if err := db.Read.QueryRow("SELECT body FROM idempotency_keys").Scan(&body); err != nil {
		t.Fatal(err)
	}
	if string(body) == "sk_secret" {
		t.Fatal("answer stored in plaintext")
	}
	other := idempotency.New(db, storetest.MasterKey(t))
	if _, err := other.Begin(ctx, "key", "k", []byte("h")); err == nil {
		t.Fatal("an answer opened under another master key")
	}
}

// One API key can keep at most MaxLive answers at a time: a new key
// beyond that is ErrLimit with the time until the oldest expires, while
// kept answers still replay and other API keys are not affected.
func TestLimitPerScope(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	s := idempotency.New(db, storetest.MasterKey(t))
	s.MaxLive = 3
	now := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	keep := func(scope, key string) error {
		if _, err := s.Begin(ctx, scope, key, []byte(key)); err != nil {
			return err
		}
		return s.Complete(ctx, scope, key, idempotency.Response{Status: 201, Body: []byte(key)})
	}
	for i := range 3 {
		if err := keep("key_a", fmt.Sprint("k", i)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute)
	}
	_, err := s.Begin(ctx, "key_a", "k3", []byte("k3"))
	var le *idempotency.LimitError
	if !errors.Is(err, idempotency.ErrLimit) || !errors.As(err, &le) || le.RetryAfter != idempotency.TTL-3*time.Minute {
		t.Fatalf("fourth key: %v (%+v), want ErrLimit until the first expires", err, le)
	}
	if resp, err := s.Begin(ctx, "key_a", "k1", []byte("k1")); err != nil || resp == nil {
		t.Fatalf("a kept answer at the limit: %v %v", resp, err)
	}
	if err := keep("key_b", "k3"); err != nil {
		t.Fatalf("another API key: %v", err)
	}
	// A restart counts from the store.
	s2 := idempotency.New(db, storetest.MasterKey(t))
	s2.MaxLive = 3
	s2.SetClock(func() time.Time { return now })
	if _, err := s2.Begin(ctx, "key_a", "k3", []byte("k3")); !errors.Is(err, idempotency.ErrLimit) {
		t.Fatalf("after a restart: %v, want ErrLimit", err)
	}
	now = now.Add(idempotency.TTL - 3*time.Minute + time.Second) // k0 expired
	if err := keep("key_a", "k3"); err != nil {
		t.Fatalf("after the oldest expired: %v", err)
	}
	if _, err := s.Begin(ctx, "key_a", "k4", []byte("k4")); !errors.Is(err, idempotency.ErrLimit) {
		t.Fatalf("full again: %v", err)
	}
}
