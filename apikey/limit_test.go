package apikey_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/posgate/posgate/apikey"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newLimiter(max int) (*apikey.Limiter, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	return apikey.NewLimiter(apikey.LimiterOptions{Burst: 3, Every: 10 * time.Second, TrustFor: time.Hour,
		MaxEntries: max, Now: clk.now}), clk
}

func TestLimiterBurstThenRetryAfter(t *testing.T) {
	l, clk := newLimiter(100)
	for i := range 3 {
		if ok, _ := l.Allow("pk_x", "10.0.0.1"); !ok {
			t.Fatalf("failure %d refused within the burst", i)
		}
		l.Failed("pk_x", "10.0.0.1")
	}
	ok, wait := l.Allow("pk_x", "10.0.0.1")
	if ok || wait != 10*time.Second {
		t.Fatalf("after the burst: ok=%v retry after %v, want refused for 10s", ok, wait)
	}
	clk.advance(4 * time.Second)
	if ok, wait := l.Allow("pk_x", "10.0.0.1"); ok || wait != 6*time.Second {
		t.Fatalf("4 s later: ok=%v retry after %v, want 6s", ok, wait)
	}
	clk.advance(6 * time.Second)
	if ok, _ := l.Allow("pk_x", "10.0.0.1"); !ok {
		t.Fatal("not allowed once a token came back")
	}
}

// The peer's bucket and the client id's bucket each refuse on their own.
func TestLimiterPerPeerAndPerClient(t *testing.T) {
	l, _ := newLimiter(100)
	for i := range 3 {
		l.Failed(fmt.Sprintf("pk_guess%d", i), "10.0.0.1") // one peer, many client ids
	}
	if ok, _ := l.Allow("pk_other", "10.0.0.1"); ok {
		t.Fatal("a peer past its failures may try another client id")
	}
	if ok, _ := l.Allow("pk_other", "10.0.0.2"); !ok {
		t.Fatal("another peer was refused")
	}
	for i := range 3 {
		l.Failed("pk_target", fmt.Sprintf("10.1.0.%d", i)) // one client id, many peers
	}
	if ok, _ := l.Allow("pk_target", "10.2.0.1"); ok {
		t.Fatal("a client id past its failures may be tried from a new peer")
	}
	// IPv6 peers count per /64.
	for i := range 3 {
		l.Failed(fmt.Sprintf("pk_v6_%d", i), apikey.PeerKey(fmt.Sprintf("[2001:db8::%d]:5000", i+1)))
	}
	if ok, _ := l.Allow("pk_v6_new", apikey.PeerKey("[2001:db8::ffff]:1")); ok {
		t.Fatal("another address of the same /64 was allowed")
	}
}

// An attacker hammering client X with wrong secrets from A cannot lock
// out the till that uses X's correct secret from B, nor a till at A with
// its own client id; the trusted pair is still limited by its own
// failures.
func TestLimiterNeverLocksOutAWorkingTill(t *testing.T) {
	l, clk := newLimiter(100)
	l.Succeeded("pk_x", "10.0.0.2")     // the real till of X
	l.Succeeded("pk_till2", "10.0.0.1") // another till behind the attacker's address
	for range 1000 {
		if ok, _ := l.Allow("pk_x", "10.0.0.1"); ok {
			l.Failed("pk_x", "10.0.0.1")
		}
	}
	if ok, _ := l.Allow("pk_x", "10.0.0.1"); ok {
		t.Fatal("the attacker is not refused")
	}
	for i := range 50 {
		if ok, wait := l.Allow("pk_x", "10.0.0.2"); !ok {
			t.Fatalf("request %d: the real till is refused for %v", i, wait)
		}
		l.Succeeded("pk_x", "10.0.0.2")
		if ok, _ := l.Allow("pk_till2", "10.0.0.1"); !ok {
			t.Fatalf("request %d: a known till behind the attacker's address is refused", i)
		}
		clk.advance(time.Second)
	}
	// The trust lasts TrustFor after the last success, then the pair is
	// judged by the client id's bucket again.
	clk.advance(time.Hour)
	for range 3 {
		l.Failed("pk_x", "10.0.0.9")
	}
	if ok, _ := l.Allow("pk_x", "10.0.0.2"); ok {
		t.Fatal("trust outlived TrustFor")
	}
	// A trusted pair's own failures limit it.
	l.Succeeded("pk_y", "10.0.0.3")
	for range 3 {
		l.Failed("pk_y", "10.0.0.3")
	}
	if ok, _ := l.Allow("pk_y", "10.0.0.3"); ok {
		t.Fatal("a trusted pair's failures are not limited")
	}
}

// Memory is bounded: a flood of distinct client ids and peers never
// holds more than MaxEntries per table.
func TestLimiterBounded(t *testing.T) {
	l, _ := newLimiter(50)
	for i := range 10_000 {
		l.Failed(fmt.Sprintf("pk_%d", i), fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		l.Succeeded(fmt.Sprintf("pk_ok%d", i), "10.0.0.1")
	}
	if n := l.Len(); n > 150 {
		t.Fatalf("%d entries held, want at most 3×50", n)
	}
}
