package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// Resolver looks up a host's addresses. *net.Resolver satisfies it; tests
// pass a fake so that names resolving to private addresses can be checked
// without any connection leaving the loopback interface.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// BlockedError is returned by the dialer for an address the policy refuses.
type BlockedError struct {
	Host string
	Addr netip.Addr
	// Literal is true for an IPv4-mapped literal, refused as written.
	Literal bool
}

func (e *BlockedError) Error() string {
	if e.Literal {
		return fmt.Sprintf("%s is an IPv4-mapped IPv6 literal; write the IPv4 address instead (webhooks.allow_private is off)", e.Host)
	}
	if e.Host != "" && e.Host != e.Addr.String() {
		return fmt.Sprintf("%s resolves to %s, a %s address; refused (webhooks.allow_private is off)", e.Host, e.Addr, addrClass(e.Addr))
	}
	return fmt.Sprintf("%s is a %s address; refused (webhooks.allow_private is off)", e.Addr, addrClass(e.Addr))
}

// DialError wraps any failure to resolve or connect, so the sender can
// tell "could not reach the network" from "the endpoint answered badly".
type DialError struct {
	Err error
	// DNS is true when the host name did not resolve.
	DNS bool
}

func (e *DialError) Error() string { return e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// Dialer connects only to addresses its policy allows. The check runs on
// every resolved address right before connecting, and again in the
// socket's Control hook on the address actually dialled, so neither a DNS
// answer nor a literal in any notation gets past it.
type Dialer struct {
	// AllowPrivate permits loopback, private, link-local and other
	// non-public addresses (webhooks.allow_private).
	AllowPrivate bool
	// Resolver resolves host names. Default net.DefaultResolver.
	Resolver Resolver
	// Timeout bounds one connect. Default 5 s.
	Timeout time.Duration
	// Dial, if set, replaces the real connect after the policy has
	// allowed an address (tests use it to observe decisions).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Allowed reports whether the policy lets the dialer connect to a.
func (d *Dialer) Allowed(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	if d.AllowPrivate {
		return true
	}
	return addrClass(a) == "public"
}

// DialContext resolves addr's host, drops every address the policy
// refuses, and connects to the first allowed one that answers. It returns
// a *BlockedError when every address was refused and a *DialError for
// resolution and connection failures.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &DialError{Err: err}
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		// A literal written as IPv4-mapped IPv6 ([::ffff:a.b.c.d]) is not
		// globally reachable as such (IANA IPv6 registry) and only ever
		// serves to dress up an IPv4 address: refused. Resolvers, by
		// contrast, may hand back A records in mapped form (Go's
		// LookupNetIP does with the cgo resolver), so those are judged as
		// the IPv4 address they carry.
		if a.Is4In6() && !d.AllowPrivate {
			return nil, &BlockedError{Host: host, Addr: a, Literal: true}
		}
		addrs = []netip.Addr{a}
	} else {
		r := d.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		addrs, err = r.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, &DialError{Err: fmt.Errorf("resolve %s: %w", host, err), DNS: true}
		}
		if len(addrs) == 0 {
			return nil, &DialError{Err: fmt.Errorf("resolve %s: no addresses", host), DNS: true}
		}
	}
	var (
		blocked *BlockedError
		errs    []error
	)
	for _, a := range addrs {
		if !d.Allowed(a) {
			if blocked == nil {
				blocked = &BlockedError{Host: host, Addr: a.Unmap()}
			}
			continue
		}
		c, err := d.dial(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		var be *BlockedError
		if errors.As(err, &be) {
			return nil, be
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 && blocked != nil {
		return nil, blocked
	}
	return nil, &DialError{Err: errors.Join(errs...)}
}

func (d *Dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.Dial != nil {
		return d.Dial(ctx, network, addr)
	}
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	nd := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: d.control}
	return nd.DialContext(ctx, network, addr)
}

// control re-checks the address the socket is about to connect to.
func (d *Dialer) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Host: address}
	}
	if !d.Allowed(ap.Addr()) {
		return &BlockedError{Addr: ap.Addr().Unmap()}
	}
	return nil
}

// nonPublic are the special-purpose ranges that are not globally
// reachable, from the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (RFC 6890 and its updates), beyond what netip classifies
// (loopback, RFC 1918 and RFC 4193 private, link-local, multicast,
// unspecified). Some of them embed an IPv4 address (6to4, Teredo, NAT64):
// those are refused whole rather than judged by the address inside,
// since whatever relays them, not posgate's dialer, decides where the
// packets go.
var nonPublic = []netip.Prefix{
	// IPv4.
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network" (RFC 791)
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space, CGNAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments (RFC 6890), incl. 192.0.0.170/31 NAT64 discovery
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation TEST-NET-1 (RFC 5737)
	netip.MustParsePrefix("192.88.99.0/24"),  // deprecated 6to4 relay anycast (RFC 7526)
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking (RFC 2544)
	netip.MustParsePrefix("198.51.100.0/24"), // documentation TEST-NET-2 (RFC 5737)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation TEST-NET-3 (RFC 5737)
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved (RFC 1112), incl. limited broadcast
	// IPv6.
	netip.MustParsePrefix("::/96"),           // deprecated IPv4-compatible (RFC 4291)
	netip.MustParsePrefix("::ffff:0:0/96"),   // IPv4-mapped (RFC 4291); see DialContext for resolver answers
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (RFC 2765)
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 well-known prefix (RFC 6052)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use IPv4/IPv6 translation (RFC 8215)
	netip.MustParsePrefix("100::/64"),        // discard-only (RFC 6666)
	netip.MustParsePrefix("100:0:0:1::/64"),  // dummy IPv6 prefix (RFC 9780)
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments (RFC 2928): Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID 2001:10::/28, ORCHIDv2 2001:20::/28, …
	netip.MustParsePrefix("2001:db8::/32"),   // documentation (RFC 3849)
	netip.MustParsePrefix("2002::/16"),       // 6to4 (RFC 3056)
	netip.MustParsePrefix("3fff::/20"),       // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"),       // SRv6 SIDs (RFC 9602)
	netip.MustParsePrefix("fc00::/7"),        // unique local (RFC 4193)
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local (RFC 3879)
}

// addrClass names the class of a: "loopback", "private", "link-local",
// "reserved" or "public". An IPv4-mapped address is judged as the IPv4
// address it carries (that is what a socket connects to).
func addrClass(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "link-local"
	case a.IsUnspecified(), a.IsMulticast():
		return "reserved"
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return "reserved"
		}
	}
	return "public"
}
