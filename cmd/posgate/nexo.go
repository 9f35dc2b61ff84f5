package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device/nexo"
	"github.com/posgate/posgate/logkey"
	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/payment"
)

// sealedPrefix marks a passphrase sealed with the master key.
const sealedPrefix = "sealed:"

var poiIDPattern = regexp.MustCompile(`^[A-Za-z0-9]+-[A-Za-z0-9]+$`)

// validateNexo checks a nexo terminal's keys (docs/nexo.md).
func (t TerminalConfig) validateNexo(k string) error {
	bad := func(key string, val any, format string, args ...any) error {
		return &ConfigError{Key: k + "." + key, Value: val, Err: fmt.Errorf(format, args...)}
	}
	addr := strings.TrimPrefix(strings.TrimPrefix(t.Port, "tls://"), "https://")
	if addr == t.Port || strings.ContainsAny(addr, "/?#@") {
		return bad("port", strconv.Quote(t.Port), "want tls://host:8443 (the terminal's LAN address)")
	}
	if h, _, err := net.SplitHostPort(addr); err != nil || h == "" {
		return bad("port", strconv.Quote(t.Port), "want tls://host:port")
	}
	switch {
	case !poiIDPattern.MatchString(t.POIID):
		return bad("poi_id", strconv.Quote(t.POIID), "want the terminal's POIID, [model]-[serial] like V400m-324688179")
	case t.KeyIdentifier == "":
		return bad("key_identifier", `""`, "required: the key identifier of the terminal's encryption key")
	case t.KeyVersion < 1:
		return bad("key_version", t.KeyVersion, "required: the key version (1 or more)")
	case t.Passphrase == "":
		return bad("passphrase", `""`, "required (seal it with posgate nexo seal-passphrase)")
	case !strings.HasPrefix(t.Passphrase, sealedPrefix) && nexo.CheckPassphrase(t.Passphrase) != nil:
		return bad("passphrase", "(hidden)", "must be printable ASCII: Adyen's libraries derive different keys from other characters")
	case t.Environment != "" && t.Environment != nexo.EnvTest && t.Environment != nexo.EnvLive:
		return bad("environment", strconv.Quote(t.Environment), `want "test" or "live"`)
	case t.Environment == nexo.EnvLive && t.RootCAFile == "":
		return bad("root_ca_file", `""`, "a live terminal needs Adyen's live terminal fleet root (PEM)")
	case !currencyPattern.MatchString(t.Currency):
		return bad("currency", strconv.Quote(t.Currency), "want an ISO 4217 code like EUR")
	}
	if t.EventListen != "" {
		h, _, err := net.SplitHostPort(t.EventListen)
		if err != nil || h == "" {
			return bad("event_listen", strconv.Quote(t.EventListen), "want host:port, like 192.168.1.10:8443")
		}
		if ip := net.ParseIP(h); (ip == nil || !ip.IsLoopback()) && h != "localhost" && !t.EventListenAllowRemote {
			return bad("event_listen", strconv.Quote(t.EventListen), "a non-loopback address needs event_listen_allow_remote = true")
		}
		if t.EventCertFile == "" || t.EventKeyFile == "" {
			return bad("event_cert_file", strconv.Quote(t.EventCertFile), "event_listen needs event_cert_file and event_key_file (the TLS certificate the terminal trusts)")
		}
	}
	return nil
}

// nexoAAD binds a sealed passphrase to its terminal and key.
func nexoAAD(t TerminalConfig) []byte {
	return []byte("posgate nexo passphrase\x00" + t.ID + "\x00" + t.KeyIdentifier)
}

// nexoPassphrase returns the terminal's passphrase, opening it with the
// master key when it is sealed.
func nexoPassphrase(t TerminalConfig, mk *masterkey.Key) (string, error) {
	if !strings.HasPrefix(t.Passphrase, sealedPrefix) {
		return t.Passphrase, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(t.Passphrase, sealedPrefix))
	if err != nil {
		return "", errors.New("not a sealed value")
	}
	p, err := mk.Open(raw, nexoAAD(t))
	if err != nil {
		return "", errors.New("does not open with this data_dir's master key (sealed for another terminal, key or box?)")
	}
	if err := nexo.CheckPassphrase(string(p)); err != nil {
		return "", err
	}
	return string(p), nil
}

// openNexoTerminals builds a client per nexo terminal, with its key
// derived once and its TLS pinned to the environment's fleet root.
func openNexoTerminals(cfg Config, mk *masterkey.Key, log zerolog.Logger) (map[string]*nexo.Client, error) {
	out := map[string]*nexo.Client{}
	for i, tc := range cfg.Terminals {
		if tc.Protocol != "nexo" {
			continue
		}
		k := fmt.Sprintf("terminals[%d]", i)
		pass, err := nexoPassphrase(tc, mk)
		if err != nil {
			return nil, &ConfigError{Key: k + ".passphrase", Value: "(hidden)", Err: err}
		}
		tlog := log.With().Str(logkey.Component, "terminal").Logger() // the client adds device_id
		if !strings.HasPrefix(tc.Passphrase, sealedPrefix) {
			tlog.Warn().Msg("nexo passphrase is in plaintext in the configuration; seal it with posgate nexo seal-passphrase")
		}
		key, err := nexo.DeriveKey(pass, tc.KeyIdentifier, tc.KeyVersion)
		if err != nil {
			return nil, &ConfigError{Key: k + ".passphrase", Value: "(hidden)", Err: err}
		}
		rootPEM := nexo.AdyenTestRoot
		if tc.RootCAFile != "" {
			if rootPEM, err = os.ReadFile(tc.RootCAFile); err != nil {
				return nil, &ConfigError{Key: k + ".root_ca_file", Value: strconv.Quote(tc.RootCAFile), Err: err}
			}
		}
		roots, err := nexo.RootPool(rootPEM)
		if err != nil {
			return nil, &ConfigError{Key: k + ".root_ca_file", Value: strconv.Quote(tc.RootCAFile), Err: err}
		}
		env := tc.Environment
		if env == "" {
			env = nexo.EnvTest
		}
		c, err := nexo.New(nexo.Options{ID: tc.ID, Addr: tc.Port, POIID: tc.POIID, SaleID: tc.SaleID, Currency: tc.Currency, Key: key,
			Trust: nexo.Trust{Roots: roots, POIID: tc.POIID, Env: env, AllowLegacy: tc.AllowLegacyCertificate}, Log: tlog})
		if err != nil {
			return nil, &ConfigError{Key: k, Value: tc.ID, Err: err}
		}
		out[tc.ID] = c
	}
	return out, nil
}

// nexoPaymentTerminals describes the nexo terminals to the payment service.
func nexoPaymentTerminals(cfg Config, clients map[string]*nexo.Client) []payment.Terminal {
	var ts []payment.Terminal
	for _, tc := range cfg.Terminals {
		c := clients[tc.ID]
		if c == nil {
			continue
		}
		ts = append(ts, payment.Terminal{ID: tc.ID, Device: c, Online: c.Online, Currency: tc.Currency, Protocol: tc.Protocol, Port: tc.Port})
	}
	return ts
}

// nexoStates adds each nexo terminal's reachability to /healthz's devices.
func nexoStates(into map[string]any, clients map[string]*nexo.Client) map[string]any {
	for id, c := range clients {
		st := map[string]any{"state": "online"}
		if !c.Online() {
			st["state"] = "offline"
			if err := c.LastError(); err != nil {
				st["last_error"] = err.Error()
			}
		}
		into[id] = st
	}
	return into
}

// nexoStdin is where seal-passphrase reads; tests replace it.
var nexoStdin io.Reader = os.Stdin

// runNexo: posgate nexo seal-passphrase --terminal ID prints the sealed
// form of the passphrase read from stdin, for the terminal's passphrase key.
func runNexo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "seal-passphrase" {
		return errors.New("nexo: want seal-passphrase")
	}
	fs := flag.NewFlagSet("nexo seal-passphrase", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs, getenv)
	id := fs.String("terminal", "", "the nexo terminal's id in the configuration")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath, getenv)
	if err != nil {
		return err
	}
	var tc *TerminalConfig
	for i := range cfg.Terminals {
		if cfg.Terminals[i].ID == *id && cfg.Terminals[i].Protocol == "nexo" {
			tc = &cfg.Terminals[i]
		}
	}
	if tc == nil {
		return fmt.Errorf("nexo seal-passphrase: no nexo terminal %q in the configuration", *id)
	}
	line, err := bufio.NewReader(nexoStdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("nexo seal-passphrase: read passphrase: %w", err)
	}
	pass := strings.TrimRight(line, "\r\n")
	if err := nexo.CheckPassphrase(pass); err != nil {
		return err
	}
	mk, err := masterkey.LoadOrCreate(cfg.MasterKeyPath())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, sealedPrefix+base64.StdEncoding.EncodeToString(mk.Seal([]byte(pass), nexoAAD(*tc))))
	return nil
}

// openNexoListeners binds the event/display listener of every nexo
// terminal that has event_listen set; none is opened otherwise.
func openNexoListeners(cfg Config, clients map[string]*nexo.Client, log zerolog.Logger) ([]*nexo.Listener, error) {
	var out []*nexo.Listener
	for i, tc := range cfg.Terminals {
		c := clients[tc.ID]
		if c == nil || tc.EventListen == "" {
			continue
		}
		k := fmt.Sprintf("terminals[%d]", i)
		cert, err := tls.LoadX509KeyPair(tc.EventCertFile, tc.EventKeyFile)
		if err != nil {
			return nil, &ConfigError{Key: k + ".event_cert_file", Value: strconv.Quote(tc.EventCertFile), Err: err}
		}
		l, err := nexo.Listen(tc.EventListen, nexo.ListenerOptions{Cert: cert, Key: c.Key(), POIID: tc.POIID, Notify: c.Notify,
			Log: log.With().Str(logkey.Component, "nexo-events").Str(logkey.DeviceID, tc.ID).Logger()})
		if err != nil {
			return nil, &ConfigError{Key: k + ".event_listen", Value: strconv.Quote(tc.EventListen), Err: err}
		}
		log.Info().Str(logkey.DeviceID, tc.ID).Str("addr", l.Addr()).Msg("nexo notification listener")
		out = append(out, l)
	}
	return out, nil
}
