package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
)

// terminalCA makes a CA of its own (as terminal fleets have) and a
// certificate for 127.0.0.1 it signed; it returns the CA as PEM and the
// terminal's certificate.
func terminalCA(t *testing.T) (caPEM []byte, leaf tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "terminal fleet CA"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "sim terminal"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
}

// tlsTerminal serves the ZVT simulator over TLS with cert on a loopback
// port until the test ends.
func tlsTerminal(t *testing.T, cert tls.Certificate) (*terminal.Simulator, string) {
	t.Helper()
	sim := terminal.New(terminal.Options{Step: 10 * time.Millisecond, SequenceIDs: true, Log: zerolog.Nop()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := simulator.ServeListener(ctx, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}), sim.ServeTCP, zerolog.Nop())
	t.Cleanup(func() { cancel(); srv.Close() })
	return sim, ln.Addr().String()
}

// apiCall is one authenticated request to a daemon.
func apiCall(t *testing.T, base string, k createdKey, method, path, body, idem string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("X-Api-Key", k.ClientID+":"+k.ClientSecret)
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// saleOn runs a sale on t1 through the API, retrying while the terminal
// is still registering (409/503), and returns the final payment, or the
// last refusal after within.
func saleOn(t *testing.T, base string, k createdKey, amount int, idem string, within time.Duration) (int, map[string]any) {
	t.Helper()
	var (
		status int
		p      map[string]any
	)
	for deadline := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
		status, p = apiCall(t, base, k, "POST", "/v1/payments", fmt.Sprintf(`{"type":"sale","terminal_id":"t1","amount":%d,"currency":"EUR"}`, amount), idem)
		if (status < 500 && status != 409) || time.Now().After(deadline) {
			break
		}
	}
	if status != 201 && status != 202 {
		return status, p
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, p = apiCall(t, base, k, "GET", "/v1/payments/"+p["id"].(string)+"?wait=5s", "", "")
		if s := p["status"]; s != "pending" && s != "in_progress" || time.Now().After(deadline) {
			return status, p
		}
	}
}

// Issue 12: a tls:// ZVT terminal configured through the config file
// alone: its fleet CA in tls_root_ca_file, or its certificate pinned by
// tls_fingerprint; sequence_ids and diagnosis_every wired through. A
// wrong pin keeps the terminal offline: nothing is sent to it.
func TestConfigZVTOverTLS(t *testing.T) {
	caPEM, cert := terminalCA(t)
	caFile := filepath.Join(t.TempDir(), "fleet-ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	var colons []string
	for _, b := range sum {
		colons = append(colons, fmt.Sprintf("%02X", b))
	}
	pin := strings.Join(colons, ":") // as openssl x509 -fingerprint -sha256 prints it
	wrong := sha256.Sum256([]byte("another terminal"))

	for name, tc := range map[string]struct {
		keys string
		ok   bool
	}{
		"OKRootCA":       {keys: fmt.Sprintf("tls_root_ca_file = %q\nsequence_ids = true\ndiagnosis_every = \"1m\"\n", caFile), ok: true},
		"OKPinOnly":      {keys: fmt.Sprintf("tls_fingerprint = %q\n", pin), ok: true},
		"OKRootCAAndPin": {keys: fmt.Sprintf("tls_root_ca_file = %q\ntls_fingerprint = \"sha256:%x\"\n", caFile, sum), ok: true},
		"ErrWrongPin":    {keys: fmt.Sprintf("tls_root_ca_file = %q\ntls_fingerprint = \"%x\"\n", caFile, wrong)},
		"ErrSystemRoots": {keys: ""}, // the fleet CA is not a system root
	} {
		t.Run(name, func(t *testing.T) {
			sim, addr := tlsTerminal(t, cert)
			cfg := writeConfig(t, fmt.Sprintf("[[terminals]]\nid = \"t1\"\nprotocol = \"zvt\"\nport = \"tls://%s\"\n%s", addr, tc.keys))
			pos, admin := cliKey(t, cfg, "pos"), cliKey(t, cfg, "admin")
			d := startDaemon(t, cfg)
			within := 20 * time.Second
			if !tc.ok {
				within = 2 * time.Second
			}
			status, p := saleOn(t, d.url, pos, 1234, "tls-sale", within)
			if !tc.ok {
				if status == 201 || status == 202 || len(sim.Journal()) != 0 {
					t.Fatalf("a terminal whose certificate does not verify took a payment: %d %v, journal %+v", status, p, sim.Journal())
				}
				return
			}
			if p["status"] != "completed" {
				t.Fatalf("sale over tls://: %d %v", status, p)
			}
			if j := sim.Journal(); len(j) != 1 || !j[0].Approved || j[0].Amount != 1234 {
				t.Fatalf("terminal journal %+v, want one approved sale of 1234", j)
			}
			if !strings.Contains(tc.keys, "sequence_ids") {
				return
			}
			// sequence_ids = true: the registration asked for ids (TLV
			// 1F73, chapter 5) and the terminal's messages were echoed
			// with theirs.
			_, frames := apiCall(t, d.url, admin, "GET", "/v1/devices/t1/frames", "", "")
			b, _ := json.Marshal(frames)
			if hex := strings.ToLower(strings.ReplaceAll(string(b), " ", "")); !strings.Contains(hex, "1f7303") {
				t.Fatalf("no 1F 73 sequence id in the frame trace: %s", b)
			}
		})
	}
}

// The ZVT keys are checked at start, each error naming its key.
func TestConfigZVTKeyErrors(t *testing.T) {
	for name, tc := range map[string]struct{ file, want string }{
		"ErrPin":           {file: "port = \"tls://10.0.0.7:22001\"\ntls_fingerprint = \"AB:CD\"", want: "terminals[0].tls_fingerprint"},
		"ErrRootCANotTLS":  {file: "port = \"tcp://10.0.0.7:20007\"\ntls_root_ca_file = \"/etc/ca.pem\"", want: "terminals[0].tls_root_ca_file"},
		"ErrPinNotTLS":     {file: "port = \"/dev/ttyUSB0\"\ntls_fingerprint = \"00\"", want: "terminals[0].tls_fingerprint"},
		"ErrDiagnosisFast": {file: "port = \"/dev/ttyUSB0\"\ndiagnosis_every = \"5s\"", want: "terminals[0].diagnosis_every = 5s"},
		"ErrSequenceIDs":   {file: "port = \"/dev/ttyUSB0\"\nsequence_ids = \"yes\"", want: "sequence_ids"},
		"ErrNexoZVTKey":    {file: "protocol = \"nexo\"\nport = \"tls://10.0.0.7:8443\"\npoi_id = \"V400m-1\"\nkey_identifier = \"K\"\nkey_version = 1\npassphrase = \"p\"\nsequence_ids = true", want: "terminals[0].sequence_ids"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			os.WriteFile(path, []byte("[[terminals]]\nid = \"t1\"\n"+tc.file), 0o600)
			var out, errb strings.Builder
			err := run(context.Background(), []string{"serve", "--config", path, "--print-config"}, noenv, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want mention of %q", err, tc.want)
			}
		})
	}
	// A root file that cannot be read is named when the daemon starts.
	cfg := writeConfig(t, "[[terminals]]\nid = \"t1\"\nport = \"tls://127.0.0.1:1\"\ntls_root_ca_file = \"/nonexistent/ca.pem\"\n")
	var out, errb strings.Builder
	err := run(context.Background(), []string{"serve", "--config", cfg}, noenv, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "terminals[0].tls_root_ca_file") {
		t.Fatalf("serve with an unreadable tls_root_ca_file: %v", err)
	}
}
