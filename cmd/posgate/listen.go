package main

import (
	"errors"
	"net"
	"net/netip"
	"strconv"

	"github.com/rs/zerolog"
)

// checkBound looks at the address the API actually bound ("localhost"
// may resolve to anything): a non-loopback one is refused unless
// listen_allow_remote is set, and then warned about at every start, so an
// API reachable from other machines never goes unnoticed in the log.
func checkBound(ln net.Listener, cfg Config, log zerolog.Logger) error {
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err == nil && ap.Addr().Unmap().IsLoopback() {
		return nil
	}
	if !cfg.ListenAllowRemote {
		return &ConfigError{Key: "listen", Value: strconv.Quote(cfg.Listen),
			Err: errors.New("bound " + ln.Addr().String() + ", which is not loopback; set listen_allow_remote = true to allow it")}
	}
	log.Warn().Str("addr", ln.Addr().String()).
		Msg("api listening beyond loopback (listen_allow_remote = true): other machines can reach it; require signed requests and put TLS and a firewall in front")
	return nil
}
