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
}

func (e *BlockedError) Error() string {
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

// Special-purpose ranges beyond what netip classifies (IANA registries).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("::/96"),           // deprecated IPv4-compatible
}

// Prefixes that embed an IPv4 address, which is then judged in its place.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// addrClass names the class of a: "loopback", "private", "link-local",
// "reserved" or "public".
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
	if a.Is6() {
		b := a.As16()
		if nat64.Contains(a) {
			return addrClass(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
		}
		if sixToFour.Contains(a) {
			return addrClass(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}))
		}
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return "reserved"
		}
	}
	return "public"
}
