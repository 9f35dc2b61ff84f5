package apikey

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/posgate/posgate/store/storetest"
)

// An unknown client id gets the same work as a wrong secret: one secret
// or signature comparison (with the unsealing before it in signed mode),
// so timing does not tell a guesser which client ids exist.
func TestUnknownClientIDCostsTheSame(t *testing.T) {
	ctx := context.Background()
	k := New(storetest.Open(t), storetest.MasterKey(t))
	c, err := k.Create(ctx, NewParams{Label: "till", Role: RolePOS})
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Now().UTC().Format(time.RFC3339)
	sig := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct {
		name string
		cred Credentials
		want error
	}{
		{"PlainWrongSecret", Credentials{APIKey: c.ClientID + ":sk_wrong"}, ErrBadSecret},
		{"PlainUnknownID", Credentials{APIKey: "pk_nobody:sk_wrong"}, ErrNotFound},
		{"SignedWrongMAC", Credentials{APIKey: c.ClientID, Timestamp: stamp, Signature: sig, Method: "GET", PathQuery: "/v1/x"}, ErrBadSignature},
		{"SignedUnknownID", Credentials{APIKey: "pk_nobody", Timestamp: stamp, Signature: sig, Method: "GET", PathQuery: "/v1/x"}, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := k.checks.Load()
			if _, err := k.Authenticate(ctx, tc.cred); !errors.Is(err, tc.want) {
				t.Fatalf("err=%v, want %v", err, tc.want)
			}
			if got := k.checks.Load() - before; got != 1 {
				t.Fatalf("%d comparisons, want 1", got)
			}
		})
	}
}

// FuzzDecodeSignature: X-Signature is accepted only as the canonical
// standard base64 of 32 bytes, so no MAC has a second accepted spelling.
func FuzzDecodeSignature(f *testing.F) {
	mac := make([]byte, 32)
	for i := range mac {
		mac[i] = byte(i * 37)
	}
	canon := base64.StdEncoding.EncodeToString(mac)
	for _, s := range []string{canon, canon[:42] + "J=", canon[:43], canon + "\n", base64.URLEncoding.EncodeToString(mac), "", "===="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := decodeSignature(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%q: %v, want ErrMalformed", s, err)
			}
			return
		}
		if len(sig) != 32 || base64.StdEncoding.EncodeToString(sig) != s {
			t.Fatalf("%q accepted as %x, which is not its canonical spelling", s, sig)
		}
	})
}
