package apikey_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/posgate/posgate/apikey"
	"github.com/posgate/posgate/store/storetest"
)

func newKeys(t *testing.T) (*apikey.Keys, string) {
	db := storetest.Open(t)
	return apikey.New(db, storetest.MasterKey(t)), db.Path()
}

func TestAuthenticatePlain(t *testing.T) {
	keys, _ := newKeys(t)
	ctx := context.Background()
	c, err := keys.Create(ctx, apikey.NewParams{Label: "till 1", Role: apikey.RolePOS})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("OK", func(t *testing.T) {
		k, err := keys.Authenticate(ctx, apikey.Credentials{APIKey: c.ClientID + ":" + c.ClientSecret})
		if err != nil {
			t.Fatal(err)
		}
		if k.ID != c.ID || k.Role != apikey.RolePOS {
			t.Fatalf("got %+v", k)
		}
	})
	for name, tc := range map[string]struct {
		header string
		want   error
	}{
		"ErrBadSecret":   {c.ClientID + ":" + c.ClientSecret + "x", apikey.ErrBadSecret},
		"ErrNotFound":    {"pk_nobody:" + c.ClientSecret, apikey.ErrNotFound},
		"ErrMalformed":   {c.ClientID, apikey.ErrMalformed},
		"ErrEmptySecret": {c.ClientID + ":", apikey.ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := keys.Authenticate(ctx, apikey.Credentials{APIKey: tc.header})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err=%v, want %v", err, tc.want)
			}
		})
	}
	t.Run("ErrRevoked", func(t *testing.T) {
		if _, err := keys.Revoke(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		_, err := keys.Authenticate(ctx, apikey.Credentials{APIKey: c.ClientID + ":" + c.ClientSecret})
		if !errors.Is(err, apikey.ErrRevoked) {
			t.Fatalf("err=%v, want ErrRevoked", err)
		}
		if _, err := keys.Revoke(ctx, c.ID); !errors.Is(err, apikey.ErrAlreadyRevoke) {
			t.Fatalf("second revoke: err=%v", err)
		}
	})
}

func TestAuthenticateSigned(t *testing.T) {
	keys, _ := newKeys(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	keys.SetClock(func() time.Time { return now })
	c, err := keys.Create(ctx, apikey.NewParams{Label: "till", Role: apikey.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	signed := func(ts time.Time, body string) apikey.Credentials {
		stamp := ts.Format(time.RFC3339)
		sig := apikey.Sign(c.ClientSecret, stamp, "POST", "/v1/payments?x=1", []byte(body))
		return apikey.Credentials{APIKey: c.ClientID, Timestamp: stamp, Signature: base64.StdEncoding.EncodeToString(sig),
			Method: "POST", PathQuery: "/v1/payments?x=1", Body: []byte(body)}
	}

	t.Run("OK", func(t *testing.T) {
		k, err := keys.Authenticate(ctx, signed(now.Add(-time.Minute), `{"a":1}`))
		if err != nil || k.ID != c.ID {
			t.Fatalf("k=%v err=%v", k.ID, err)
		}
	})
	t.Run("ErrReplay", func(t *testing.T) {
		cr := signed(now.Add(-2*time.Minute), `{"a":2}`)
		if _, err := keys.Authenticate(ctx, cr); err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Authenticate(ctx, cr); !errors.Is(err, apikey.ErrReplay) {
			t.Fatalf("err=%v, want ErrReplay", err)
		}
	})
	t.Run("ErrStale", func(t *testing.T) {
		for _, ts := range []time.Time{now.Add(-6 * time.Minute), now.Add(6 * time.Minute)} {
			if _, err := keys.Authenticate(ctx, signed(ts, "")); !errors.Is(err, apikey.ErrStale) {
				t.Fatalf("ts %v: err=%v, want ErrStale", ts, err)
			}
		}
	})
	t.Run("ErrBadSignature", func(t *testing.T) {
		cr := signed(now, `{"a":3}`)
		cr.Body = []byte(`{"a":4}`) // body altered in transit
		if _, err := keys.Authenticate(ctx, cr); !errors.Is(err, apikey.ErrBadSignature) {
			t.Fatalf("err=%v, want ErrBadSignature", err)
		}
	})
	// Only the canonical base64 of the MAC is a signature: the spellings a
	// lax decoder also takes (other padding bits, no padding, a line
	// break, URL alphabet) are malformed, and none of them is a second use
	// of the MAC either.
	t.Run("ErrMalformedSpelling", func(t *testing.T) {
		cr := signed(now, `{"a":5}`)
		canon := cr.Signature
		next := map[byte]byte{'A': 'B', 'E': 'F', 'I': 'J', 'M': 'N', 'Q': 'R', 'U': 'V', 'Y': 'Z', 'c': 'd', 'g': 'h',
			'k': 'l', 'o': 'p', 's': 't', 'w': 'x', '0': '1', '4': '5', '8': '9'}
		for _, sig := range []string{
			canon[:42] + string(next[canon[42]]) + "=",
			canon[:43],
			canon[:20] + "\n" + canon[20:],
			base64.URLEncoding.EncodeToString(apikey.Sign(c.ClientSecret, cr.Timestamp, "POST", "/v1/payments?x=1", []byte(`{"a":5}`))),
			" " + canon,
		} {
			bad := cr
			bad.Signature = sig
			if sig == canon {
				continue // the URL alphabet happened to spell it the same
			}
			if _, err := keys.Authenticate(ctx, bad); !errors.Is(err, apikey.ErrMalformed) {
				t.Fatalf("signature %q: err=%v, want ErrMalformed", sig, err)
			}
		}
		if _, err := keys.Authenticate(ctx, cr); err != nil {
			t.Fatalf("canonical spelling after the refused ones: %v", err)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		cr := signed(now, "")
		cr.Timestamp = "yesterday"
		if _, err := keys.Authenticate(ctx, cr); !errors.Is(err, apikey.ErrMalformed) {
			t.Fatalf("err=%v, want ErrMalformed", err)
		}
	})
}

// The database file, read as bytes, holds no client secret: neither the
// hash column nor the sealed column is the secret in any encoding.
func TestSecretNotStored(t *testing.T) {
	keys, path := newKeys(t)
	ctx := context.Background()
	var secrets []string
	for range 5 {
		c, err := keys.Create(ctx, apikey.NewParams{Label: "k", Role: apikey.RolePOS})
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, c.ClientSecret)
	}
	var raw []byte
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	if len(raw) == 0 {
		t.Fatal("read no database bytes")
	}
	for _, s := range secrets {
		if bytes.Contains(raw, []byte(s)) || bytes.Contains(raw, []byte(s[3:])) {
			t.Fatalf("database contains client secret %q", s[:6]+"…")
		}
	}
}

func TestCreateValidates(t *testing.T) {
	keys, _ := newKeys(t)
	ctx := context.Background()
	if _, err := keys.Create(ctx, apikey.NewParams{Label: "", Role: apikey.RolePOS}); !errors.Is(err, apikey.ErrInvalidLabel) {
		t.Fatalf("empty label: %v", err)
	}
	if _, err := keys.Create(ctx, apikey.NewParams{Label: "x", Role: "root"}); !errors.Is(err, apikey.ErrInvalidRole) {
		t.Fatalf("bad role: %v", err)
	}
	list, err := keys.List(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("list after refused creates: %v %v", list, err)
	}
}

// One key's signed requests can make the store remember at most
// MaxSigned MACs per twice the window: beyond that they are refused
// (and nothing is written) until the budget refills; a replay of a
// captured request does not spend the budget.
func TestSignedBudget(t *testing.T) {
	keys, _ := newKeys(t)
	keys.MaxSigned = 3
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	keys.SetClock(func() time.Time { return now })
	c, err := keys.Create(ctx, apikey.NewParams{Label: "till", Role: apikey.RolePOS})
	if err != nil {
		t.Fatal(err)
	}
	signed := func(body string) apikey.Credentials {
		stamp := now.Format(time.RFC3339)
		sig := apikey.Sign(c.ClientSecret, stamp, "GET", "/v1/devices", []byte(body))
		return apikey.Credentials{APIKey: c.ClientID, Timestamp: stamp, Signature: base64.StdEncoding.EncodeToString(sig),
			Method: "GET", PathQuery: "/v1/devices", Body: []byte(body)}
	}
	first := signed("0")
	if _, err := keys.Authenticate(ctx, first); err != nil {
		t.Fatal(err)
	}
	for range 5 { // replays are refused and spend nothing
		if _, err := keys.Authenticate(ctx, first); !errors.Is(err, apikey.ErrReplay) {
			t.Fatalf("replay: %v", err)
		}
	}
	for i := 1; i < 3; i++ {
		if _, err := keys.Authenticate(ctx, signed(fmt.Sprint(i))); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	_, err = keys.Authenticate(ctx, signed("3"))
	var sle *apikey.SignedLimitError
	if !errors.As(err, &sle) || sle.RetryAfter != 200*time.Second {
		t.Fatalf("fourth: %v, want SignedLimitError retry after 200s (10 min / 3)", err)
	}
	now = now.Add(200 * time.Second)
	if _, err := keys.Authenticate(ctx, signed("4")); err != nil {
		t.Fatalf("after a refill: %v", err)
	}
}
