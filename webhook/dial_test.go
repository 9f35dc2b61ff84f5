package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/posgate/posgate/webhook"
)

// fakeResolver answers from a table; no DNS query leaves the process.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	as, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range as {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

var errFakeDial = errors.New("fake dial: not connecting")

// decide runs the dialer's decision for addr without ever connecting: an
// allowed address reaches the fake Dial, which records it and fails.
func decide(t *testing.T, allowPrivate bool, addr string) (dialled []string, err error) {
	t.Helper()
	d := &webhook.Dialer{
		AllowPrivate: allowPrivate,
		Resolver: fakeResolver{
			"erp.example.com":       {"93.184.216.34"},
			"internal.example.com":  {"10.1.2.3"},
			"metadata.example.com":  {"169.254.169.254"},
			"mixed.example.com":     {"192.168.1.10", "93.184.216.34"},
			"six.example.com":       {"fd00::1"},
			"localhost.example":     {"127.0.0.1", "::1"},
			"teredo.example.com":    {"2001:0:4136:e378:8000:63bf:3fff:fdd2"},
			"sixtofour.example.com": {"2002:5db8:d822::1"},  // embeds public 93.184.216.34
			"nat64.example.com":     {"64:ff9b::5db8:d822"}, // embeds public 93.184.216.34
			"orchid.example.com":    {"2001:20::1"},
			"docs6.example.com":     {"2001:db8::1"},
			"mapped.example.com":    {"::ffff:93.184.216.34"}, // an A record as Go's cgo resolver may give it
			"mapped10.example.com":  {"::ffff:10.0.0.1"},
		},
		Dial: func(_ context.Context, _, a string) (net.Conn, error) {
			dialled = append(dialled, a)
			return nil, errFakeDial
		},
	}
	_, err = d.DialContext(context.Background(), "tcp", addr)
	return dialled, err
}

func TestDialerRefusesNonPublicAddresses(t *testing.T) {
	blocked := []string{
		"127.0.0.1:443", "127.9.9.9:443", "[::1]:443", "10.0.0.1:443", "172.16.5.4:443", "172.31.255.255:443",
		"192.168.0.1:443", "169.254.169.254:80", "[fe80::1]:443", "[fc00::1]:443", "[fd12:3456::1]:443",
		"0.0.0.0:443", "[::]:443", "100.64.0.1:443", "198.18.0.1:443", "255.255.255.255:443", "224.0.0.1:443",
		"[::ffff:10.0.0.1]:443", "[::ffff:127.0.0.1]:443", "[64:ff9b::a00:1]:443", "[2002:a00:1::1]:443",
		"[ff02::1]:443", "internal.example.com:443", "metadata.example.com:80", "six.example.com:443",
		"localhost.example:443", "192.0.2.1:443", "240.0.0.1:443",
	}
	for _, addr := range blocked {
		t.Run(addr, func(t *testing.T) {
			dialled, err := decide(t, false, addr)
			var be *webhook.BlockedError
			if !errors.As(err, &be) {
				t.Fatalf("err=%v, want *BlockedError", err)
			}
			if len(dialled) != 0 {
				t.Fatalf("dialled %v", dialled)
			}
		})
	}
}

func TestDialerAllowsPublicAddresses(t *testing.T) {
	for addr, want := range map[string]string{
		"93.184.216.34:443":     "93.184.216.34:443",
		"erp.example.com:443":   "93.184.216.34:443",
		"[2606:4700::1111]:443": "[2606:4700::1111]:443",
		// A name with one private and one public address: only the
		// public one is dialled.
		"mixed.example.com:443": "93.184.216.34:443",
	} {
		t.Run(addr, func(t *testing.T) {
			dialled, err := decide(t, false, addr)
			if !errors.Is(err, errFakeDial) {
				t.Fatalf("err=%v, want the fake dial's", err)
			}
			if len(dialled) != 1 || dialled[0] != want {
				t.Fatalf("dialled %v, want [%s]", dialled, want)
			}
		})
	}
}

func TestDialerAllowPrivate(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:443", "internal.example.com:443", "[fe80::1]:443", "127.0.0.1:443"} {
		dialled, err := decide(t, true, addr)
		if !errors.Is(err, errFakeDial) || len(dialled) != 1 {
			t.Fatalf("%s with allow_private: err=%v dialled=%v", addr, err, dialled)
		}
	}
	// Multicast and unspecified stay refused.
	for _, addr := range []string{"0.0.0.0:443", "224.0.0.1:443", "[::]:443"} {
		if _, err := decide(t, true, addr); err == nil || errors.Is(err, errFakeDial) {
			t.Fatalf("%s with allow_private: err=%v, want refused", addr, err)
		}
	}
}

func TestDialerDNSFailureIsNetworkError(t *testing.T) {
	_, err := decide(t, false, "nowhere.example.com:443")
	var de *webhook.DialError
	if !errors.As(err, &de) || !de.DNS {
		t.Fatalf("err=%v, want a DNS *DialError", err)
	}
	if !strings.Contains(err.Error(), "nowhere.example.com") {
		t.Fatalf("error %q does not name the host", err)
	}
}

// The real dialer (no fake Dial) refuses loopback and opens no
// connection: the listener sees nothing.
func TestDialerRealConnectRefusedToLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	d := &webhook.Dialer{}
	_, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
	var be *webhook.BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("err=%v, want *BlockedError", err)
	}
	select {
	case <-accepted:
		t.Fatal("listener accepted a connection")
	default:
	}
}

// Issue 11 part 12: the IANA IPv6 and IPv4 special-purpose registries'
// ranges that are not globally reachable are not dialled without
// allow_private, including prefixes that embed a public IPv4 address
// (6to4, Teredo, NAT64): whatever relays them decides where the packets
// go. Decided on the dialer's decision with a fake resolver; nothing is
// dialled.
func TestDialerRefusesSpecialPurposeRanges(t *testing.T) {
	for _, addr := range []string{
		"[2001::1]:443", "[2001:0:4136:e378:8000:63bf:3fff:fdd2]:443", // Teredo 2001::/32
		"[2001:2::1]:443",                // benchmarking 2001:2::/48
		"[2001:10::1]:443",               // ORCHID (deprecated) 2001:10::/28
		"[2001:20::1]:443",               // ORCHIDv2 2001:20::/28
		"[2001:db8::1]:443",              // documentation
		"[3fff::1]:443",                  // documentation (RFC 9637)
		"[2002:5db8:d822::1]:443",        // 6to4 with a public IPv4 inside
		"[64:ff9b::5db8:d822]:443",       // NAT64 with a public IPv4 inside
		"[64:ff9b:1::1]:443",             // local-use NAT64
		"[100::1]:443",                   // discard-only
		"[100:0:0:1::1]:443",             // dummy prefix
		"[5f00::1]:443",                  // SRv6 SIDs
		"[fd00::1]:443", "[fc00::1]:443", // unique local
		"[fec0::1]:443",              // site-local
		"[::ffff:93.184.216.34]:443", // IPv4-mapped literal, even of a public address
		"[::ffff:0:5db8:d822]:443",   // IPv4-translated
		"[::5db8:d822]:443",          // IPv4-compatible
		"192.88.99.1:443",            // 6to4 relay anycast
		"192.0.0.170:443",            // NAT64 discovery
		"teredo.example.com:443", "sixtofour.example.com:443", "nat64.example.com:443",
		"orchid.example.com:443", "docs6.example.com:443", "mapped10.example.com:443",
	} {
		t.Run(addr, func(t *testing.T) {
			dialled, err := decide(t, false, addr)
			var be *webhook.BlockedError
			if !errors.As(err, &be) || len(dialled) != 0 {
				t.Fatalf("err=%v dialled=%v, want *BlockedError and nothing dialled", err, dialled)
			}
		})
	}
	// allow_private lets them through to the (fake) connect.
	for _, addr := range []string{"[2001::1]:443", "teredo.example.com:443", "[64:ff9b::5db8:d822]:443", "[::ffff:93.184.216.34]:443"} {
		if dialled, err := decide(t, true, addr); !errors.Is(err, errFakeDial) || len(dialled) != 1 {
			t.Fatalf("%s with allow_private: err=%v dialled=%v", addr, err, dialled)
		}
	}
	// A resolver's answer in IPv4-mapped form is judged as the IPv4
	// address it carries, and that address is what is dialled.
	if dialled, err := decide(t, false, "mapped.example.com:443"); !errors.Is(err, errFakeDial) || len(dialled) != 1 || dialled[0] != "93.184.216.34:443" {
		t.Fatalf("mapped answer: err=%v dialled=%v", err, dialled)
	}
}
