package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/device/nexo"
	simnexo "github.com/posgate/posgate/simulator/nexo"
)

const nexoTerminal = `[[terminals]]
id = "t1"
protocol = "nexo"
port = "tls://%s"
poi_id = "V400m-324688179"
key_identifier = "Key1"
key_version = 1
passphrase = %q
root_ca_file = %q
`

func TestNexoConfigErrors(t *testing.T) {
	base := "[[terminals]]\nid = \"t2\"\nprotocol = \"nexo\"\nport = \"tls://192.168.1.40:8443\"\npoi_id = \"V400m-324688179\"\nkey_identifier = \"K\"\nkey_version = 1\n"
	for name, tc := range map[string]struct{ file, want string }{
		"ErrPassphraseASCII": {base + "passphrase = \"pässwörd\"", "terminals[0].passphrase"},
		"ErrNoPassphrase":    {base, "terminals[0].passphrase"},
		"ErrPort":            {strings.Replace(base, "tls://192.168.1.40:8443", "/dev/ttyUSB0", 1) + "passphrase = \"p\"", "terminals[0].port"},
		"ErrPOIID":           {strings.Replace(base, "V400m-324688179", "V400m", 1) + "passphrase = \"p\"", "terminals[0].poi_id"},
		"ErrKeyVersion":      {strings.Replace(base, "key_version = 1", "key_version = 0", 1) + "passphrase = \"p\"", "terminals[0].key_version"},
		"ErrLiveNoRoot":      {base + "passphrase = \"p\"\nenvironment = \"live\"", "terminals[0].root_ca_file"},
		"ErrEventRemote":     {base + "passphrase = \"p\"\nevent_listen = \"0.0.0.0:8443\"", "event_listen_allow_remote"},
		"ErrEventCert":       {base + "passphrase = \"p\"\nevent_listen = \"127.0.0.1:8443\"", "event_cert_file"},
		"ErrProtocol":        {strings.Replace(base, `"nexo"`, `"nexo2"`, 1), "terminals[0].protocol"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.toml")
			os.WriteFile(path, []byte(tc.file), 0o600)
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"serve", "--config", path, "--print-config"}, noenv, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want mention of %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "pässwörd") {
				t.Fatalf("error shows the passphrase: %v", err)
			}
		})
	}
}

// TestNexoServe: posgate serve with a nexo terminal (its passphrase
// sealed with posgate nexo seal-passphrase) runs payments on the nexo
// simulator through the API, as it does on ZVT.
func TestNexoServe(t *testing.T) {
	sim, err := simnexo.New(simnexo.Options{Step: 30 * time.Millisecond, Passphrase: "Shop-Pass 42"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := sim.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); srv.Close() }()
	root := filepath.Join(t.TempDir(), "root.pem")
	os.WriteFile(root, sim.RootPEM(), 0o600)

	// Seal the passphrase, then keep only the sealed form in the file.
	cfg := writeConfig(t, fmt.Sprintf(nexoTerminal, srv.Addr(), "Shop-Pass 42", root))
	nexoStdin = strings.NewReader("Shop-Pass 42\n")
	defer func() { nexoStdin = os.Stdin }()
	sealed, err := cli(t, "nexo", "seal-passphrase", "--config", cfg, "--terminal", "t1")
	if err != nil {
		t.Fatal(err)
	}
	sealed = strings.TrimSpace(sealed)
	if !strings.HasPrefix(sealed, "sealed:") || strings.Contains(sealed, "Shop-Pass") {
		t.Fatalf("sealed %q", sealed)
	}
	raw, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(raw, []byte(`"Shop-Pass 42"`), []byte(`"`+sealed+`"`), 1), 0o600)
	var pc bytes.Buffer
	if err := run(context.Background(), []string{"serve", "--config", cfg, "--print-config"}, noenv, &pc, &pc); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(pc.String(), sealed) || !strings.Contains(pc.String(), `passphrase = "********"`) {
		t.Fatalf("print-config shows the passphrase:\n%s", pc.String())
	}

	d := startDaemon(t, cfg)
	k := cliKey(t, cfg, "pos")
	call := func(method, path, body, idem string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, d.url+path, strings.NewReader(body))
		req.Header.Set("X-Api-Key", k.ClientID+":"+k.ClientSecret)
		req.Header.Set("Content-Type", "application/json")
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
	pay := func(body, idem string) map[string]any {
		t.Helper()
		var (
			status int
			p      map[string]any
		)
		// The api stores a 409 under its Idempotency-Key and replays it, so
		// each try while the terminal registers takes a key of its own.
		for try, deadline := 0, time.Now().Add(30*time.Second); ; try++ {
			if try > 0 {
				time.Sleep(100 * time.Millisecond)
			}
			status, p = call("POST", "/v1/payments", body, fmt.Sprintf("%s-%d", idem, try))
			if status < 500 && status != 409 || time.Now().After(deadline) {
				break
			}
		}
		if status != 201 && status != 202 {
			t.Fatalf("create payment: %d %v\n%s", status, p, d.stderr.String())
		}
		for deadline := time.Now().Add(20 * time.Second); ; {
			_, p = call("GET", "/v1/payments/"+p["id"].(string)+"?wait=10s", "", "")
			if s := p["status"]; s != "pending" && s != "in_progress" || time.Now().After(deadline) {
				return p
			}
		}
	}
	sale := pay(`{"type":"sale","terminal_id":"t1","amount":1234,"currency":"EUR"}`, "n-sale")
	if sale["status"] != "completed" || sale["terminal_reference"] == nil || sale["masked_pan"] != "5413******9999" {
		t.Fatalf("sale %v", sale)
	}
	if p := pay(`{"type":"sale","terminal_id":"t1","amount":1251,"currency":"EUR"}`, "n-decline"); p["status"] != "failed" {
		t.Fatalf("decline %v", p)
	}
	rv := pay(fmt.Sprintf(`{"type":"reversal","terminal_id":"t1","original_payment_id":%q}`, sale["id"]), "n-rev")
	if rv["status"] != "completed" {
		t.Fatalf("reversal %v", rv)
	}
	j := sim.Journal()
	if len(j) != 2 || j[0].Amount != 1234 || !j[0].Reversed || j[1].Kind != simnexo.Reversal {
		t.Fatalf("journal %+v", j)
	}
	if _, dev := call("GET", "/v1/devices/t1", "", ""); dev["protocol"] != "nexo" {
		t.Fatalf("device %v", dev)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "posgate events"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "ev.crt"), filepath.Join(dir, "ev.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

var listenerAddr = regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)"[^\n]*nexo notification listener`)

// TestNexoEventListener: with event_listen set, posgate takes the
// terminal's sealed notifications on loopback; a Shutdown event makes the
// terminal offline for the API at once.
func TestNexoEventListener(t *testing.T) {
	sim, err := simnexo.New(simnexo.Options{Step: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := sim.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); srv.Close() }()
	root := filepath.Join(t.TempDir(), "root.pem")
	os.WriteFile(root, sim.RootPEM(), 0o600)
	certFile, keyFile, pool := selfSigned(t)
	cfg := writeConfig(t, fmt.Sprintf(nexoTerminal, srv.Addr(), "posgate-simulator", root)+
		fmt.Sprintf("event_listen = \"127.0.0.1:0\"\nevent_cert_file = %q\nevent_key_file = %q\n", certFile, keyFile))
	d := startDaemon(t, cfg)
	k := cliKey(t, cfg, "pos")
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if m := listenerAddr.FindStringSubmatch(d.stderr.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no listener logged:\n%s", d.stderr.String())
		}
	}
	state := func() string {
		req, _ := http.NewRequest("GET", d.url+"/v1/devices/t1", nil)
		req.Header.Set("X-Api-Key", k.ClientID+":"+k.ClientSecret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		json.NewDecoder(res.Body).Decode(&m)
		return fmt.Sprint(m["state"])
	}
	for deadline := time.Now().Add(15 * time.Second); state() != "online"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("terminal never online: %s", state())
		}
	}
	key, _ := nexo.DeriveKey("posgate-simulator", "Key1", 1)
	body, _ := nexo.Seal(key, nexo.WrapRequest, nil, []byte(`{"SaleToPOIRequest":{"MessageHeader":{"MessageClass":"Event","MessageCategory":"Event",`+
		`"MessageType":"Notification","SaleID":"posgate","POIID":"V400m-324688179"},"EventNotification":{"EventToNotify":"Shutdown"}}}`), nil)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := hc.Post("https://"+addr+"/events", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("notification: %d", res.StatusCode)
	}
	if s := state(); s != "offline" {
		t.Fatalf("after Shutdown the terminal is %s", s)
	}
	// A notification posgate cannot open is refused.
	res, err = hc.Post("https://"+addr+"/events", "application/json", strings.NewReader(`{"SaleToPOIRequest":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("clear notification: %d", res.StatusCode)
	}
}
