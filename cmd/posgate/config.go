package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/rs/zerolog"
)

// Config is posgate's configuration: DESIGN §2's names are the contract.
// Every scalar key can be overridden by POSGATE_<PATH>, e.g.
// POSGATE_WEBHOOKS_ALLOW_HTTP=true; lists of scalars take commas.
type Config struct {
	Listen    string           `toml:"listen"`
	DataDir   string           `toml:"data_dir"`
	StoreID   string           `toml:"store_id"` // carried by every event (issue 18); "" is null
	Log       LogConfig        `toml:"log"`
	Webhooks  WebhooksConfig   `toml:"webhooks"`
	Payments  PaymentsConfig   `toml:"payments"`
	Terminals []TerminalConfig `toml:"terminals"`
	Printers  []PrinterConfig  `toml:"printers"`
	Fiscal    FiscalConfig     `toml:"fiscal"`
	Debug     DebugConfig      `toml:"debug"`

	// ListenAllowRemote lets listen name a non-loopback address; posgate
	// then warns at every start (README "Reaching posgate from a LAN till").
	ListenAllowRemote bool `toml:"listen_allow_remote"`
}

// DebugConfig turns on diagnostics for a box in the field.
type DebugConfig struct {
	// Pprof serves the Go runtime's profiles at /debug/pprof/ to admin
	// keys (docs/performance.md).
	Pprof bool `toml:"pprof"`
}

// LogConfig sets logging.
type LogConfig struct {
	Level string `toml:"level"`
}

// WebhooksConfig sets webhook delivery.
type WebhooksConfig struct {
	AllowHTTP     bool       `toml:"allow_http"`
	AllowPrivate  bool       `toml:"allow_private"`
	Timeout       Duration   `toml:"timeout"`
	RetrySchedule []Duration `toml:"retry_schedule"`
	MaxAttempts   int        `toml:"max_attempts"`
	DisableAfter  Duration   `toml:"disable_after"` // circuit breaker; "0s" turns it off
}

// PaymentsConfig sets payment sessions.
type PaymentsConfig struct {
	Timeout Duration `toml:"timeout"`
}

// TerminalConfig is one card terminal.
type TerminalConfig struct {
	ID       string `toml:"id"`
	Protocol string `toml:"protocol"`
	Port     string `toml:"port"`
	Baud     int    `toml:"baud"`
	Password string `toml:"password" secret:"true"`
	Currency string `toml:"currency"`
	// nexo (Adyen Terminal API, local); see docs/nexo.md.
	POIID                  string `toml:"poi_id"`
	KeyIdentifier          string `toml:"key_identifier"`
	KeyVersion             int    `toml:"key_version"`
	Passphrase             string `toml:"passphrase" secret:"true"` // ASCII, or "sealed:…" from posgate nexo seal-passphrase
	RootCAFile             string `toml:"root_ca_file"`
	Environment            string `toml:"environment"` // test (default) or live
	SaleID                 string `toml:"sale_id"`
	AllowLegacyCertificate bool   `toml:"allow_legacy_certificate"`
	EventListen            string `toml:"event_listen"`              // optional TLS listener for the terminal's notifications
	EventListenAllowRemote bool   `toml:"event_listen_allow_remote"` // required for a non-loopback event_listen
	EventCertFile          string `toml:"event_cert_file"`           // the listener's certificate (PEM)
	EventKeyFile           string `toml:"event_key_file"`            // and its key (PEM)
	// zvt; see docs/zvt.md.
	TLSRootCAFile  string   `toml:"tls_root_ca_file"` // PEM roots for a tls:// port; default the system roots
	TLSFingerprint string   `toml:"tls_fingerprint"`  // SHA-256 of the terminal's certificate to pin
	SequenceIDs    bool     `toml:"sequence_ids"`     // TLV 1F73 message sequence ids
	DiagnosisEvery Duration `toml:"diagnosis_every"`  // periodic Diagnosis 06 70; "0s" (default) only when the terminal asks
}

// PrinterConfig is one fiscal printer.
type PrinterConfig struct {
	ID       string `toml:"id"`
	Protocol string `toml:"protocol"`
	Port     string `toml:"port"`
	Baud     int    `toml:"baud"`
	Operator int    `toml:"operator"`
	Password string `toml:"password" secret:"true"`
	// Width and CodePage are for protocol "escpos": characters per line
	// (42 on 80 mm paper, 48 on 576-dot heads, 32 on 58 mm) and the
	// character table, "cp852" (ESC t 18) or "wpc1250" (ESC t 45).
	Width    int    `toml:"width"`
	CodePage string `toml:"code_page"`
	// ClockTolerance is for fiscal printers: on each connection the
	// printer's clock is set when it is off by more than this; default
	// 30s, "0s" leaves the clock alone.
	ClockTolerance *Duration `toml:"clock_tolerance"`
}

// FiscalConfig selects the signing scheme and the taxpayer's identifiers.
type FiscalConfig struct {
	Scheme       string `toml:"scheme"`
	TIN          string `toml:"tin"`
	BusinessUnit string `toml:"business_unit"`
	TCR          string `toml:"tcr"`
	Software     string `toml:"software"`
	VerifyURL    string `toml:"verify_url"`
	// Country picks the fiscal profile (me, al, bg or none: cmd/posgate
	// newProfile and docs/profile-*.md): what is signed, registered and
	// printed, the time zone and the VAT rates.
	Country string `toml:"country"`
	// Environment is the portal: test or production.
	Environment string `toml:"environment"`
	// Currency of every invoice (ISO 4217).
	Currency string `toml:"currency"`
	// The tax service (registration, me/al): see docs/fiscal.md.
	Operator       string     `toml:"operator"` // OperatorCode
	Maintainer     string     `toml:"maintainer"`
	SellerName     string     `toml:"seller_name"`
	SellerAddress  string     `toml:"seller_address"`
	SellerTown     string     `toml:"seller_town"`
	IssuerInVAT    bool       `toml:"issuer_in_vat"`
	ServiceURL     string     `toml:"service_url"` // registers nothing until set
	ServiceCAFile  string     `toml:"service_ca_file"`
	ServiceTimeout Duration   `toml:"service_timeout"`
	RetrySchedule  []Duration `toml:"retry_schedule"`
	MaxAttempts    int        `toml:"max_attempts"`
	ReceiptFICWait Duration   `toml:"receipt_fic_wait"` // how long a receipt waits for the FIC
}

// Enabled reports whether invoices can be issued: the taxpayer and the
// register are named.
func (f FiscalConfig) Enabled() bool {
	return f.TIN != "" && f.BusinessUnit != "" && f.TCR != "" && f.Software != ""
}

// Duration is a time.Duration written as "10s" in TOML and env.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration like \"10s\": %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration back in the same form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultConfig returns the defaults of DESIGN §2.
func DefaultConfig() Config {
	return Config{
		Listen:  "127.0.0.1:8420",
		DataDir: "./data",
		Log:     LogConfig{Level: "info"},
		Webhooks: WebhooksConfig{
			Timeout: Duration{10 * time.Second},
			RetrySchedule: []Duration{{10 * time.Second}, {60 * time.Second}, {300 * time.Second},
				{600 * time.Second}},
			MaxAttempts:  50,
			DisableAfter: Duration{5 * 24 * time.Hour},
		},
		Payments: PaymentsConfig{Timeout: Duration{90 * time.Second}},
		Fiscal: FiscalConfig{Scheme: "me-iic", Country: "me", Environment: "test", Currency: "EUR",
			IssuerInVAT: true, ServiceTimeout: Duration{10 * time.Second}, MaxAttempts: 50,
			RetrySchedule: []Duration{{10 * time.Second}, {60 * time.Second}, {300 * time.Second}, {600 * time.Second}}},
	}
}

// ConfigError names the configuration key at fault and its bad value.
type ConfigError struct {
	Key   string
	Value any
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("config %s = %v: %v", e.Key, e.Value, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// loadConfig reads the file at path (none: defaults only), applies env
// overrides, fills defaults for device entries and validates the result.
func loadConfig(path string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		md, err := toml.DecodeFile(path, &cfg)
		if errors.Is(err, fs.ErrNotExist) {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return Config{}, fmt.Errorf("read config %s: line %d: %s", path, perr.Position.Line, perr.Message)
		}
		if err != nil {
			return Config{}, fmt.Errorf("read config %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return Config{}, &ConfigError{Key: und[0].String(), Value: "(set in " + path + ")", Err: errors.New("unknown key")}
		}
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), "POSGATE", "", getenv); err != nil {
		return Config{}, err
	}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// applyEnv overrides every scalar field of v from the environment. Lists
// of tables (terminals, printers) are file-only.
func applyEnv(v reflect.Value, prefix, keyPrefix string, getenv func(string) string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("toml")
		env := prefix + "_" + strings.ToUpper(name)
		key := keyPrefix + name
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration{}) {
			if err := applyEnv(fv, env, key+".", getenv); err != nil {
				return err
			}
			continue
		}
		raw := getenv(env)
		if raw == "" {
			continue
		}
		if err := setFromString(fv, raw); err != nil {
			return &ConfigError{Key: key, Value: fmt.Sprintf("%q (from %s)", raw, env), Err: err}
		}
	}
	return nil
}

func setFromString(v reflect.Value, raw string) error {
	if u, ok := v.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(raw))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return errors.New("want true or false")
		}
		v.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return errors.New("want an integer")
		}
		v.SetInt(int64(n))
	case reflect.Slice:
		parts := strings.Split(raw, ",")
		s := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setFromString(s.Index(i), strings.TrimSpace(p)); err != nil {
				return err
			}
		}
		v.Set(s)
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

func (c *Config) fillDefaults() {
	for i := range c.Terminals {
		t := &c.Terminals[i]
		if t.Protocol == "" {
			t.Protocol = "zvt"
		}
		if t.Baud == 0 {
			t.Baud = 9600
		}
		if t.Password == "" {
			t.Password = "000000"
		}
		if t.Currency == "" {
			t.Currency = "EUR"
		}
	}
	for i := range c.Printers {
		p := &c.Printers[i]
		if p.Protocol == "" {
			p.Protocol = "datecs-x"
		}
		if p.ClockTolerance == nil {
			p.ClockTolerance = &Duration{30 * time.Second}
		}
		if p.Protocol == "escpos" && p.Baud == 0 {
			p.Baud = 38400
		}
		if p.Protocol == "escpos" && p.Width == 0 {
			p.Width = 42
		}
		if p.Protocol == "escpos" && p.CodePage == "" {
			p.CodePage = "cp852"
		}
		if p.Baud == 0 {
			p.Baud = 115200
		}
	}
}

var (
	idPattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
	zvtPassword     = regexp.MustCompile(`^[0-9]{6}$`)
	storeIDPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// Validate checks every key, returning a *ConfigError for the first bad one.
func (c Config) Validate() error {
	bad := func(key string, val any, format string, args ...any) error {
		return &ConfigError{Key: key, Value: val, Err: fmt.Errorf(format, args...)}
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return bad("listen", strconv.Quote(c.Listen), "want host:port, like 127.0.0.1:8420")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return bad("listen", strconv.Quote(c.Listen), "port must be 0 to 65535")
	}
	if host == "" {
		return bad("listen", strconv.Quote(c.Listen), "name the address to bind; 127.0.0.1 keeps the API on this box")
	}
	if !loopbackHost(host) && !c.ListenAllowRemote {
		return bad("listen", strconv.Quote(c.Listen), "not a loopback address: the API would be reachable from other machines; "+
			"set listen_allow_remote = true (POSGATE_LISTEN_ALLOW_REMOTE=true) to allow it, and see README \"Reaching posgate from a LAN till\"")
	}
	if c.DataDir == "" {
		return bad("data_dir", `""`, "must name a directory")
	}
	if _, err := zerolog.ParseLevel(c.Log.Level); err != nil || c.Log.Level == "" {
		return bad("log.level", strconv.Quote(c.Log.Level), "want trace, debug, info, warn or error")
	}
	if c.Webhooks.Timeout.Duration <= 0 || c.Webhooks.Timeout.Duration > 5*time.Minute {
		return bad("webhooks.timeout", c.Webhooks.Timeout, "must be between 0s and 5m")
	}
	if len(c.Webhooks.RetrySchedule) == 0 {
		return bad("webhooks.retry_schedule", "[]", "needs at least one interval")
	}
	for i, d := range c.Webhooks.RetrySchedule {
		if d.Duration <= 0 {
			return bad(fmt.Sprintf("webhooks.retry_schedule[%d]", i), d, "must be positive")
		}
	}
	if c.Webhooks.MaxAttempts < 1 || c.Webhooks.MaxAttempts > 1000 {
		return bad("webhooks.max_attempts", c.Webhooks.MaxAttempts, "must be 1 to 1000")
	}
	if d := c.Webhooks.DisableAfter.Duration; d < 0 || d > 365*24*time.Hour {
		return bad("webhooks.disable_after", c.Webhooks.DisableAfter, `must be 0s (never) to 8760h`)
	}
	if c.StoreID != "" && !storeIDPattern.MatchString(c.StoreID) {
		return bad("store_id", strconv.Quote(c.StoreID), "want 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
	}
	if c.Payments.Timeout.Duration <= 0 || c.Payments.Timeout.Duration > 10*time.Minute {
		return bad("payments.timeout", c.Payments.Timeout, "must be between 0s and 10m")
	}
	ids := map[string]bool{}
	for i, t := range c.Terminals {
		k := fmt.Sprintf("terminals[%d]", i)
		switch {
		case !idPattern.MatchString(t.ID):
			return bad(k+".id", strconv.Quote(t.ID), "want 1-32 of a-z 0-9 _ -")
		case ids[t.ID]:
			return bad(k+".id", strconv.Quote(t.ID), "used by another device")
		case t.Protocol == "nexo":
			if err := t.validateNexo(k); err != nil {
				return err
			}
		case t.Protocol != "zvt":
			return bad(k+".protocol", strconv.Quote(t.Protocol), `want "zvt" or "nexo"`)
		case strings.HasPrefix(t.Port, "tls://") && validTLSPort(t.Port) != nil: // ZVT over TLS
			return bad(k+".port", strconv.Quote(t.Port), "%v", validTLSPort(t.Port))
		case !strings.HasPrefix(t.Port, "tls://") && validPort(t.Port) != nil:
			return bad(k+".port", strconv.Quote(t.Port), "%v", validPort(t.Port))
		case t.Baud <= 0:
			return bad(k+".baud", t.Baud, "must be positive")
		case !zvtPassword.MatchString(t.Password):
			return bad(k+".password", "(hidden)", "want 6 digits")
		case !currencyPattern.MatchString(t.Currency):
			return bad(k+".currency", strconv.Quote(t.Currency), "want an ISO 4217 code like EUR")
		}
		if err := t.validateZVT(k); err != nil {
			return err
		}
		ids[t.ID] = true
	}
	for i, p := range c.Printers {
		k := fmt.Sprintf("printers[%d]", i)
		switch {
		case !idPattern.MatchString(p.ID):
			return bad(k+".id", strconv.Quote(p.ID), "want 1-32 of a-z 0-9 _ -")
		case ids[p.ID]:
			return bad(k+".id", strconv.Quote(p.ID), "used by another device")
		case p.Protocol == "datecs-isl":
			return bad(k+".protocol", strconv.Quote(p.Protocol), `the old ISL command set is not supported yet (only its framing); use "datecs-x"`)
		case p.Protocol != "datecs-x" && p.Protocol != "escpos":
			return bad(k+".protocol", strconv.Quote(p.Protocol), `want "datecs-x" or "escpos"`)
		case p.Protocol == "escpos" && (p.Width < 16 || p.Width > 96):
			return bad(k+".width", p.Width, "want 16 to 96 characters per line")
		case p.Protocol == "escpos" && p.CodePage != "cp852" && p.CodePage != "wpc1250":
			return bad(k+".code_page", strconv.Quote(p.CodePage), `want "cp852" or "wpc1250"`)
		case validPort(p.Port) != nil:
			return bad(k+".port", strconv.Quote(p.Port), "%v", validPort(p.Port))
		case p.Baud <= 0:
			return bad(k+".baud", p.Baud, "must be positive")
		case p.ClockTolerance != nil && p.ClockTolerance.Duration < 0:
			return bad(k+".clock_tolerance", p.ClockTolerance.Duration.String(), `must not be negative ("0s" leaves the clock alone)`)
		}
		ids[p.ID] = true
	}
	if c.Fiscal.Scheme != "me-iic" {
		return bad("fiscal.scheme", strconv.Quote(c.Fiscal.Scheme), `want "me-iic"`)
	}
	// The country profile decides what else must and must not be set.
	prof, err := newProfile(c.Fiscal, profileDeps{})
	if err != nil {
		return err
	}
	if err := checkProfile(c, prof.Requirements()); err != nil {
		return err
	}
	if c.Fiscal.Environment != "test" && c.Fiscal.Environment != "production" {
		return bad("fiscal.environment", strconv.Quote(c.Fiscal.Environment), `want "test" or "production"`)
	}
	if !currencyPattern.MatchString(c.Fiscal.Currency) {
		return bad("fiscal.currency", strconv.Quote(c.Fiscal.Currency), "want an ISO 4217 code like EUR")
	}
	if (c.Fiscal.TIN != "" || c.Fiscal.BusinessUnit != "" || c.Fiscal.TCR != "" || c.Fiscal.Software != "") && !c.Fiscal.Enabled() {
		for k, v := range map[string]string{"fiscal.tin": c.Fiscal.TIN, "fiscal.business_unit": c.Fiscal.BusinessUnit,
			"fiscal.tcr": c.Fiscal.TCR, "fiscal.software": c.Fiscal.Software} {
			if v == "" {
				return bad(k, `""`, "fiscal needs tin, business_unit, tcr and software together")
			}
		}
	}
	if c.Fiscal.VerifyURL != "" {
		if u, err := url.Parse(c.Fiscal.VerifyURL); err != nil || u.Scheme != "https" || u.Host == "" {
			return bad("fiscal.verify_url", strconv.Quote(c.Fiscal.VerifyURL), "want an https:// URL")
		}
	}
	return c.Fiscal.validateService()
}

// loopbackHost reports whether a listen host is this box only: a loopback
// IP literal (127.0.0.0/8, ::1) or "localhost". Any other name is not
// resolved here; it counts as remote. serve checks the address actually
// bound as well.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// validPort checks a device port: a path, tcp://host:port or usb:VID:PID[:serial].
func validPort(p string) error {
	switch {
	case p == "":
		return errors.New("must be a device path, tcp://host:port or usb:VID:PID[:serial]")
	case strings.HasPrefix(p, "tcp://"):
		if _, _, err := net.SplitHostPort(strings.TrimPrefix(p, "tcp://")); err != nil {
			return errors.New("want tcp://host:port")
		}
	case strings.HasPrefix(p, "usb:"):
		parts := strings.Split(p, ":")
		if len(parts) < 3 || len(parts) > 4 || len(parts[1]) != 4 || len(parts[2]) != 4 {
			return errors.New("want usb:VID:PID[:serial] with 4-digit hex VID and PID")
		}
	case !filepath.IsAbs(p):
		return errors.New("a device path must be absolute, like /dev/ttyUSB0")
	}
	return nil
}

// validTLSPort checks a tls://host:port terminal port (ZVT over TLS).
func validTLSPort(p string) error {
	if _, _, err := net.SplitHostPort(strings.TrimPrefix(p, "tls://")); err != nil {
		return errors.New("want tls://host:port")
	}
	return nil
}

// DBPath is the store's file in the data directory.
func (c Config) DBPath() string { return filepath.Join(c.DataDir, "posgate.db") }

// MasterKeyPath is the master key file in the data directory.
func (c Config) MasterKeyPath() string { return filepath.Join(c.DataDir, "master.key") }

// printConfig writes the effective configuration as TOML, secrets masked.
func printConfig(w interface{ Write([]byte) (int, error) }, c Config) error {
	masked := c
	masked.Terminals = append([]TerminalConfig(nil), c.Terminals...)
	for i := range masked.Terminals {
		masked.Terminals[i].Password = "********"
		if masked.Terminals[i].Passphrase != "" {
			masked.Terminals[i].Passphrase = "********"
		}
	}
	masked.Printers = append([]PrinterConfig(nil), c.Printers...)
	for i := range masked.Printers {
		if masked.Printers[i].Password != "" {
			masked.Printers[i].Password = "********"
		}
	}
	return toml.NewEncoder(w).Encode(masked)
}

// configFlag adds --config to fs, defaulting to $POSGATE_CONFIG.
func configFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	return fs.String("config", getenv("POSGATE_CONFIG"), "TOML configuration `file` (default: built-in defaults)")
}
