package apikey

import (
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// LimiterOptions tune a Limiter. Zero values take the defaults named.
type LimiterOptions struct {
	// Burst is how many failed authentications a peer address, a client
	// id, or a trusted pair may have at once before it is refused.
	// Default 10.
	Burst int
	// Every is how often one more failure is allowed after the burst.
	// Default 6 s (10 a minute).
	Every time.Duration
	// TrustFor is how long a (client id, peer) pair that authenticated
	// correctly keeps its own budget, apart from the client id's and the
	// peer's. Default 24 h.
	TrustFor time.Duration
	// MaxEntries bounds each of the three tables (peers, client ids,
	// trusted pairs); the least recently used entry goes first. Default
	// 10,000, a few MB at most.
	MaxEntries int
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Limiter slows down the guessing of API keys. Failed authentications
// spend tokens from a bucket per peer address and one per client id; when
// either is empty, requests from that peer or for that client id are
// refused before their credentials are looked at, until the bucket
// refills.
//
// A pair (client id, peer) that authenticated correctly is trusted for
// TrustFor: its requests are judged only by that pair's own failures. So
// an attacker who hammers client X with wrong secrets from address A
// empties X's and A's buckets, yet the till that uses X's correct secret
// from address B goes on working, and so does a till at A with another
// client id it used before. What cannot be told apart is the attacker and
// the till behind the same address with the same client id.
//
// Memory is bounded by MaxEntries per table. Forgetting a bucket only
// gives its owner a fresh burst, and reaching a forgotten target again
// costs the attacker that burst from its own peer bucket.
type Limiter struct {
	opts LimiterOptions

	mu      sync.Mutex // guards the tables and the limiters in them
	peers   *simplelru.LRU[string, *rate.Limiter]
	clients *simplelru.LRU[string, *rate.Limiter]
	trusted *simplelru.LRU[pair, *trust]
}

type pair struct{ client, peer string }

type trust struct {
	failures *rate.Limiter
	until    time.Time
}

// NewLimiter returns a Limiter with o's settings.
func NewLimiter(o LimiterOptions) *Limiter {
	if o.Burst <= 0 {
		o.Burst = 10
	}
	if o.Every <= 0 {
		o.Every = 6 * time.Second
	}
	if o.TrustFor <= 0 {
		o.TrustFor = 24 * time.Hour
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{opts: o}
	// NewLRU fails only for a size below 1, excluded above.
	l.peers, _ = simplelru.NewLRU[string, *rate.Limiter](o.MaxEntries, nil)
	l.clients, _ = simplelru.NewLRU[string, *rate.Limiter](o.MaxEntries, nil)
	l.trusted, _ = simplelru.NewLRU[pair, *trust](o.MaxEntries, nil)
	return l
}

// PeerKey turns a remote address ("ip:port" or an ip) into the key its
// failures are counted under: the IP, or its /64 for IPv6, since one
// host usually holds a whole /64.
func PeerKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	var ip netip.Addr
	if err == nil {
		ip = ap.Addr()
	} else if ip, err = netip.ParseAddr(remote); err != nil {
		return remote
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Allow reports whether a request for clientID from peer may have its
// credentials checked now; if not, retryAfter says when it may.
func (l *Limiter) Allow(clientID, peer string) (ok bool, retryAfter time.Duration) {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.trusted.Get(pair{clientID, peer}); ok && now.Before(t.until) {
		return waitFor(t.failures, now)
	}
	wait := time.Duration(0)
	if b, ok := l.peers.Get(peer); ok {
		_, w := waitFor(b, now)
		wait = max(wait, w)
	}
	if b, ok := l.clients.Get(clientID); ok {
		_, w := waitFor(b, now)
		wait = max(wait, w)
	}
	return wait == 0, wait
}

// Failed records a failed authentication for clientID from peer.
func (l *Limiter) Failed(clientID, peer string) {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.trusted.Get(pair{clientID, peer}); ok && now.Before(t.until) {
		t.failures.AllowN(now, 1)
		return
	}
	l.spend(l.peers, peer, now)
	l.spend(l.clients, clientID, now)
}

// Succeeded records a correct authentication: the pair is trusted for
// TrustFor from now.
func (l *Limiter) Succeeded(clientID, peer string) {
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := pair{clientID, peer}
	if t, ok := l.trusted.Get(k); ok {
		t.until = now.Add(l.opts.TrustFor)
		return
	}
	l.trusted.Add(k, &trust{failures: l.bucket(), until: now.Add(l.opts.TrustFor)})
}

// Len returns the number of entries held, all tables together (tests,
// metrics).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peers.Len() + l.clients.Len() + l.trusted.Len()
}

func (l *Limiter) bucket() *rate.Limiter {
	return rate.NewLimiter(rate.Every(l.opts.Every), l.opts.Burst)
}

// spend takes one token from key's bucket in table, making the bucket
// (full) on its first failure. Caller must hold mu.
func (l *Limiter) spend(table *simplelru.LRU[string, *rate.Limiter], key string, now time.Time) {
	b, ok := table.Get(key)
	if !ok {
		b = l.bucket()
		table.Add(key, b)
	}
	b.AllowN(now, 1)
}

// waitFor reports whether b has a token at now, and otherwise how long
// until it has one, rounded up to whole seconds for Retry-After.
func waitFor(b *rate.Limiter, now time.Time) (bool, time.Duration) {
	tokens := b.TokensAt(now)
	if tokens >= 1 {
		return true, 0
	}
	secs := (1 - tokens) / float64(b.Limit())
	return false, time.Duration(math.Ceil(secs)) * time.Second
}
