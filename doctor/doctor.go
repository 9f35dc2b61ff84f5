package doctor

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"time"

	_ "github.com/mattn/go-sqlite3" // the store's driver, read-only here
	"golang.org/x/sys/unix"

	"github.com/posgate/posgate/masterkey"
)

// Status of a check.
type Status string

// Statuses, worst last.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check's outcome.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// Check is a named probe. Run gets a context bounded by Timeout.
type Check struct {
	Name string
	Run  func(ctx context.Context) (Status, string)
}

// Timeout bounds each check.
const Timeout = 5 * time.Second

// Run runs the checks one after another (they touch the same disk and
// ports; a doctor run is not a hot path) and returns their results.
func Run(ctx context.Context, checks []Check) []Result {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, Timeout)
		st, detail := c.Run(cctx)
		cancel()
		out = append(out, Result{Check: c.Name, Status: st, Detail: detail})
	}
	return out
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Print writes one line per result, or a JSON array.
func Print(w io.Writer, rs []Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rs)
	}
	for _, r := range rs {
		if _, err := fmt.Fprintf(w, "%-4s  %-28s %s\n", r.Status, r.Check, r.Detail); err != nil {
			return err
		}
	}
	return nil
}

// Limits the store checks warn at.
const (
	MinFreeDisk = 100 << 20 // bytes free on the data dir's filesystem
	MaxWAL      = 64 << 20  // a WAL this large means checkpoints are not keeping up
)

// Store checks the SQLite file: it opens, passes PRAGMA integrity_check
// (read-only, so it may run beside the daemon), its filesystem has room
// and its WAL is not growing without bound.
func Store(path string) Check {
	return Check{Name: "store", Run: func(ctx context.Context) (Status, string) {
		if _, err := os.Stat(path); err != nil {
			return Fail, fmt.Sprintf("%s: %v", path, err)
		}
		db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
		if err != nil {
			return Fail, fmt.Sprintf("open %s: %v", path, err)
		}
		defer db.Close()
		var res string
		if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
			return Fail, fmt.Sprintf("integrity check of %s: %v", path, err)
		}
		if res != "ok" {
			return Fail, fmt.Sprintf("integrity check of %s: %s", path, res)
		}
		var fs unix.Statfs_t
		if err := unix.Statfs(path, &fs); err != nil {
			return Fail, fmt.Sprintf("free disk of %s: %v", path, err)
		}
		free := int64(fs.Bavail) * int64(fs.Bsize)
		var wal int64
		if fi, err := os.Stat(path + "-wal"); err == nil {
			wal = fi.Size()
		}
		detail := fmt.Sprintf("integrity ok, %d MiB free, WAL %d KiB", free>>20, wal>>10)
		switch {
		case free < MinFreeDisk:
			return Warn, detail + fmt.Sprintf("; less than %d MiB free", MinFreeDisk>>20)
		case wal > MaxWAL:
			return Warn, detail + fmt.Sprintf("; WAL over %d MiB", MaxWAL>>20)
		}
		return OK, detail
	}}
}

// MasterKey checks that the master key exists, is readable, is a valid
// key and is not readable by others.
func MasterKey(path string) Check {
	return Check{Name: "master key", Run: func(context.Context) (Status, string) {
		fi, err := os.Stat(path)
		if err != nil {
			return Fail, fmt.Sprintf("%s: %v", path, err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return Fail, fmt.Sprintf("read %s: %v", path, err)
		}
		if _, err := masterkey.New(raw); err != nil {
			return Fail, fmt.Sprintf("%s: %v", path, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return Warn, fmt.Sprintf("%s is mode %o; want 0600", path, fi.Mode().Perm())
		}
		return OK, path + " present, 0600"
	}}
}

// Certificate checks one certificate's expiry: fail when expired, warn
// within 30 days.
func Certificate(id, label string, notAfter time.Time, now func() time.Time) Check {
	return Check{Name: "certificate " + id, Run: func(context.Context) (Status, string) {
		left := notAfter.Sub(now())
		d := fmt.Sprintf("%s expires %s", label, notAfter.UTC().Format(time.DateOnly))
		switch {
		case left <= 0:
			return Fail, d + ": expired"
		case left < 30*24*time.Hour:
			return Warn, fmt.Sprintf("%s: in %d days", d, int(left.Hours()/24))
		}
		return OK, d
	}}
}

// MaxSkew is the clock difference to a server that is a warning.
const MaxSkew = 2 * time.Minute

// TaxService sends a HEAD to the tax service and compares its Date header
// with the local clock: the tax service refuses invoices stamped too far
// from its time.
func TaxService(client *http.Client, rawURL string, now func() time.Time) Check {
	return Check{Name: "tax service", Run: func(ctx context.Context) (Status, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, rawURL, nil)
		if err != nil {
			return Fail, fmt.Sprintf("fiscal.service_url %q: %v", rawURL, err)
		}
		start := now()
		res, err := client.Do(req)
		if err != nil {
			return Fail, fmt.Sprintf("%s unreachable: %v", rawURL, err)
		}
		res.Body.Close()
		rtt := now().Sub(start)
		date, err := http.ParseTime(res.Header.Get("Date"))
		if err != nil {
			return Warn, fmt.Sprintf("%s answered %d in %s, without a Date header", rawURL, res.StatusCode, rtt.Round(time.Millisecond))
		}
		skew := start.Add(rtt / 2).Sub(date)
		d := fmt.Sprintf("%s answered %d in %s, clock skew %s", rawURL, res.StatusCode, rtt.Round(time.Millisecond), skew.Round(time.Second))
		if skew > MaxSkew || skew < -MaxSkew {
			return Fail, d + fmt.Sprintf(" (more than %s)", MaxSkew)
		}
		if res.StatusCode >= 500 {
			return Warn, d
		}
		return OK, d
	}}
}

// Dialer is the webhook sender's guarded dialer (webhook.Dialer).
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Webhook connects to an endpoint (TCP, and TLS for https) through the
// webhook SSRF guard, without sending a request: no delivery is spent.
func Webhook(id, rawURL string, dial Dialer, tlsConf *tls.Config) Check {
	return Check{Name: "webhook " + id, Run: func(ctx context.Context) (Status, string) {
		u, err := url.Parse(rawURL)
		if err != nil {
			return Fail, fmt.Sprintf("%s: %v", rawURL, err)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		conn, err := dial.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
		if err != nil {
			return Fail, fmt.Sprintf("%s: %v", rawURL, err)
		}
		defer conn.Close()
		if u.Scheme == "https" {
			c := &tls.Config{ServerName: u.Hostname()}
			if tlsConf != nil {
				c = tlsConf.Clone()
				c.ServerName = u.Hostname()
			}
			tc := tls.Client(conn, c)
			if err := tc.HandshakeContext(ctx); err != nil {
				return Fail, fmt.Sprintf("%s: TLS: %v", rawURL, err)
			}
			if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 && time.Until(certs[0].NotAfter) < 14*24*time.Hour {
				return Warn, fmt.Sprintf("%s reachable; its certificate expires %s", rawURL, certs[0].NotAfter.UTC().Format(time.DateOnly))
			}
			return OK, rawURL + " reachable (TCP and TLS)"
		}
		return OK, rawURL + " reachable (TCP)"
	}}
}

// DaemonDevices asks a running daemon's /healthz for the state its own
// device links see: the daemon owns the ports, so doctor does not open
// them beside it. ok is false when no daemon answers.
func DaemonDevices(ctx context.Context, client *http.Client, base string) (checks []Check, ok bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return nil, false
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, false
	}
	defer res.Body.Close()
	var body struct {
		Devices map[string]struct {
			State     string `json:"state"`
			Condition string `json:"condition"` // a receipt printer's "paper out", "cover open", …
			LastError string `json:"last_error"`
		} `json:"devices"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body); err != nil {
		return nil, false
	}
	ids := make([]string, 0, len(body.Devices))
	for id := range body.Devices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		d := body.Devices[id]
		checks = append(checks, Check{Name: "device " + id, Run: func(context.Context) (Status, string) {
			detail := d.State + " (as the running daemon sees it)"
			if d.Condition != "" {
				detail += ": " + d.Condition
			}
			if d.LastError != "" {
				detail += ": " + d.LastError
			}
			if d.State != "online" {
				return Fail, detail
			}
			return OK, detail
		}})
	}
	return checks, true
}

// Probe is a device's own health command (ZVT status enquiry, Datecs
// status, ESC/POS real-time status, nexo Diagnosis): nil when the device
// answered and reports no fault, a Warning when it answered with a
// condition that does not stop it yet (paper near end).
type Probe func(ctx context.Context) (string, error)

// Warning is a probe's answer that makes its check warn, not fail.
type Warning string

func (w Warning) Error() string { return string(w) }

// Device runs probe on a port doctor opened itself (no daemon running).
func Device(id string, probe Probe) Check {
	return Check{Name: "device " + id, Run: func(ctx context.Context) (Status, string) {
		detail, err := probe(ctx)
		var w Warning
		if errors.As(err, &w) {
			return Warn, w.Error()
		}
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return Fail, "no answer within " + Timeout.String()
			}
			return Fail, err.Error()
		}
		return OK, detail
	}}
}

// Clock checks the local clock is plausible: not before the build's
// year (a box without RTC battery boots in 1970) and synchronised when
// the kernel says so.
func Clock(now func() time.Time, notBefore time.Time) Check {
	return Check{Name: "clock", Run: func(context.Context) (Status, string) {
		t := now()
		if t.Before(notBefore) {
			return Fail, fmt.Sprintf("clock says %s, before %s: set the time (fiscal receipts carry it)", t.UTC().Format(time.RFC3339), notBefore.Format(time.DateOnly))
		}
		var tx unix.Timex
		if st, err := unix.Adjtimex(&tx); err == nil && st == unix.TIME_ERROR {
			return Warn, t.UTC().Format(time.RFC3339) + "; not synchronised (no NTP)"
		}
		return OK, t.UTC().Format(time.RFC3339)
	}}
}
