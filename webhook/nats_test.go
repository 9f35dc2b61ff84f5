package webhook_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/posgate/posgate/webhook"
)

// testTLS makes a CA and a server certificate for 127.0.0.1 signed by it.
func testTLS(t *testing.T) (caPEM string, server tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "posgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: srvKey}
}

// natsServer runs the real NATS server embedded on loopback with
// JetStream and a stream capturing posgate.>, and stops it at cleanup.
func natsServer(t *testing.T, o natsserver.Options) (*natsserver.Server, string) {
	t.Helper()
	o.Host, o.Port, o.JetStream, o.StoreDir, o.NoLog, o.NoSigs = "127.0.0.1", -1, true, t.TempDir(), true, true
	ns, err := natsserver.NewServer(&o)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	port := strconv.Itoa(ns.Addr().(*net.TCPAddr).Port)
	copts := []nats.Option{}
	if o.Username != "" {
		copts = append(copts, nats.UserInfo(o.Username, o.Password))
	}
	if o.Authorization != "" {
		copts = append(copts, nats.Token(o.Authorization))
	}
	if o.TLSConfig != nil {
		copts = append(copts, nats.Secure(&tls.Config{InsecureSkipVerify: true})) //nolint:gosec // the test's own server, set-up only
	}
	nc, err := nats.Connect("nats://127.0.0.1:"+port, copts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "POSGATE", Subjects: []string{"posgate.>"}}); err != nil {
		t.Fatal(err)
	}
	return ns, port
}

// Issue 18 part 1: a nats endpoint over TLS with a configurable CA and a
// user and password: the credentials are sealed (not in the data
// directory's files) and masked in answers; a password sent back masked
// keeps the stored one; without the CA the handshake is refused.
func TestNATSEndpointTLSAndSealedCredentials(t *testing.T) {
	caPEM, cert := testTLS(t)
	const password = "nats-pw-secret-777"
	_, port := natsServer(t, natsserver.Options{Username: "shop", Password: password, TLS: true,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	eps, db, path := newEndpoints(t, webhook.SenderOptions{AllowPrivate: true, Timeout: 5 * time.Second})
	ctx := context.Background()
	url := "tls://127.0.0.1:" + port
	cfg := webhook.NATSConfig{Subject: "posgate.shop-1", Stream: "POSGATE", User: "shop", Password: password, CAPEM: caPEM}
	c, _, err := eps.Create(ctx, webhook.NewParams{Type: webhook.TypeNATS, URL: url, NATS: &cfg})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if c.Type != webhook.TypeNATS || c.NATS.Password != "****" || c.NATS.User != "shop" || c.NATS.CAPEM != caPEM {
		t.Fatalf("created view %+v", c.NATS)
	}
	if ep, _ := eps.Get(ctx, c.ID); ep.NATS == nil || ep.NATS.Password != "****" {
		t.Fatalf("get view %+v", ep.NATS)
	}
	masked := cfg
	masked.Password = "****"
	if _, err := eps.Update(ctx, c.ID, webhook.Patch{NATS: &masked}); err != nil {
		t.Fatalf("patch with the password masked (pinged with the stored one): %v", err)
	}
	tg, _ := eps.Target(ctx, c.ID)
	if tg.NATS.Password != password {
		t.Fatal("the stored password was not kept")
	}
	assertNotInFiles(t, path, password)
	db.Close()
	assertNotInFiles(t, path, password)

	eps2, _, _ := newEndpoints(t, webhook.SenderOptions{AllowPrivate: true, Timeout: 5 * time.Second})
	noCA := cfg
	noCA.CAPEM = ""
	_, _, err = eps2.Create(ctx, webhook.NewParams{Type: webhook.TypeNATS, URL: url, NATS: &noCA})
	var pe *webhook.PingError
	if !errors.As(err, &pe) || pe.Result.Class != webhook.ClassTLS {
		t.Fatalf("without the CA: %v", err)
	}
	wrong := cfg
	wrong.Password = "nope"
	if _, _, err := eps2.Create(ctx, webhook.NewParams{Type: webhook.TypeNATS, URL: url, NATS: &wrong}); !errors.As(err, &pe) {
		t.Fatalf("wrong password: %v", err)
	}
}

// A token is sealed too, and an endpoint sent back as GET showed it keeps
// its token.
func TestNATSTokenKeptWhenSentBackMasked(t *testing.T) {
	const token = "nats-token-secret-4242"
	_, port := natsServer(t, natsserver.Options{Authorization: token})
	eps, db, path := newEndpoints(t, webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true, Timeout: 5 * time.Second})
	ctx := context.Background()
	c, _, err := eps.Create(ctx, webhook.NewParams{Type: webhook.TypeNATS, URL: "nats://127.0.0.1:" + port,
		NATS: &webhook.NATSConfig{Subject: "posgate.t", Token: token}})
	if err != nil {
		t.Fatal(err)
	}
	view, _ := eps.Get(ctx, c.ID)
	if view.NATS.Token == token || view.NATS.Password != "****" {
		t.Fatalf("view %+v", view.NATS)
	}
	back := *view.NATS
	if _, err := eps.Update(ctx, c.ID, webhook.Patch{NATS: &back}); err != nil {
		t.Fatalf("patch with the view as shown (pinged with the stored token): %v", err)
	}
	if tg, _ := eps.Target(ctx, c.ID); tg.NATS.Token != token || tg.NATS.Password != "" {
		t.Fatalf("target credentials %q/%q", tg.NATS.Token, tg.NATS.Password)
	}
	db.Close()
	assertNotInFiles(t, path, token)
}

func TestNATSEndpointRefusals(t *testing.T) {
	eps, _, _ := newEndpoints(t, webhook.SenderOptions{AllowPrivate: true})
	ctx := context.Background()
	ok := &webhook.NATSConfig{Subject: "posgate.a"}
	for _, c := range []struct {
		p     webhook.NewParams
		field string
	}{
		{webhook.NewParams{Type: "mqtt", URL: "tls://127.0.0.1:1"}, "type"},
		{webhook.NewParams{Type: webhook.TypeNATS, URL: "https://127.0.0.1:1", NATS: ok}, "url"},
		{webhook.NewParams{Type: webhook.TypeNATS, URL: "nats://127.0.0.1:1", NATS: ok}, "url"}, // plain needs allow_http
		{webhook.NewParams{Type: webhook.TypeNATS, URL: "tls://127.0.0.1", NATS: ok}, "url"},    // no port
		{webhook.NewParams{Type: webhook.TypeNATS, URL: "tls://127.0.0.1:1"}, "nats"},
		{webhook.NewParams{Type: webhook.TypeNATS, URL: "tls://127.0.0.1:1", NATS: &webhook.NATSConfig{Subject: "posgate.*"}}, "nats.subject"},
		{webhook.NewParams{Type: webhook.TypeNATS, URL: "tls://127.0.0.1:1", NATS: &webhook.NATSConfig{Subject: "a..b"}}, "nats.subject"},
		{webhook.NewParams{Type: webhook.TypeNATS, URL: "tls://127.0.0.1:1", NATS: &webhook.NATSConfig{Subject: "a", Stream: "x y"}}, "nats.stream"},
		{webhook.NewParams{Type: webhook.TypeNATS, URL: "tls://127.0.0.1:1", NATS: &webhook.NATSConfig{Subject: "a", CAPEM: "nope"}}, "nats.ca_pem"},
		{webhook.NewParams{Type: webhook.TypeNATS, URL: "tls://127.0.0.1:1", NATS: &webhook.NATSConfig{Subject: "a", Token: "t", User: "u"}}, "nats.token"},
		{webhook.NewParams{URL: "https://127.0.0.1:1", NATS: ok}, "nats"},
	} {
		_, _, err := eps.Create(ctx, c.p)
		var fe *webhook.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: %v, want a FieldError on %s", c.p, err, c.field)
		}
	}
}

// The address policy covers NATS too: without allow_private a loopback
// broker is refused at dial time and never connected to.
func TestNATSAddressPolicy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	eps, _, _ := newEndpoints(t, webhook.SenderOptions{Timeout: 2 * time.Second})
	_, _, err = eps.Create(context.Background(), webhook.NewParams{Type: webhook.TypeNATS,
		URL: "tls://" + ln.Addr().String(), NATS: &webhook.NATSConfig{Subject: "posgate.a"}})
	var pe *webhook.PingError
	if !errors.As(err, &pe) || pe.Result.Class != webhook.ClassBlocked || !strings.Contains(pe.Result.Err, "loopback") {
		t.Fatalf("loopback broker without allow_private: %v", err)
	}
	if accepted.Load() != 0 {
		t.Fatal("the broker was connected to")
	}
}
