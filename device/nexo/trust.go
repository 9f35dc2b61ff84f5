package nexo

import (
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Environments, as in the terminal's certificate name.
const (
	EnvTest = "test"
	EnvLive = "live"
)

// AdyenTestRoot is Adyen's Test Terminal Fleet Root (SHA-256
// 3A:33:C3:34:C3:0F:69:46:…:80:A7:EC:BE), from adyen-java-api-library's
// test resources. The live root is not published in the libraries; it is
// configured (root_ca_file) from Adyen's "Protect local communications"
// page.
//
//go:embed testdata/adyen-terminalfleet-test.pem
var AdyenTestRoot []byte

// ErrTerminalName means the terminal's certificate chains to the pinned
// root but names another terminal.
var ErrTerminalName = errors.New("nexo: terminal certificate names another terminal")

// commonName is the shape Adyen's libraries accept for a terminal leaf:
// "<model>-<serial>.<env>.terminal.adyen.com" (Node
// src/helpers/checkServerIdentity.ts; Java TerminalCommonNameValidator).
var commonName = regexp.MustCompile(`^([a-zA-Z0-9]+-[a-zA-Z0-9]+)\.(live|test)\.terminal\.adyen\.com$`)

// Trust is how posgate decides it talks to the configured terminal.
type Trust struct {
	Roots *x509.CertPool // the fleet root of Env only
	POIID string         // the terminal's POIID; its leaf CN must be POIID.Env.terminal.adyen.com
	Env   string         // EnvTest or EnvLive
	// AllowLegacy also accepts "legacy-terminal-certificate.<env>.terminal.adyen.com",
	// which Adyen's libraries accept for old terminals; it proves only that
	// the peer is some Adyen terminal, not which one.
	AllowLegacy bool
}

// RootPool parses PEM roots.
func RootPool(pem []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, errors.New("nexo: no certificate in the root CA file")
	}
	return p, nil
}

// TLSConfig is the client configuration for a terminal. Go's hostname
// check cannot be used (the terminal is dialled by IP and its name is
// only in the CN), so it is replaced by VerifyConnection: the chain must
// reach the pinned root, and the leaf CN must name the terminal.
func (tr Trust) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection below, which always runs
		VerifyConnection:   tr.verify,
	}
}

func (tr Trust) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("nexo: terminal sent no certificate")
	}
	if tr.Roots == nil {
		return errors.New("nexo: no terminal root configured")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: tr.Roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("nexo: terminal certificate: %w", err)
	}
	return tr.CheckName(leaf.Subject.CommonName)
}

// CheckName checks a leaf's common name against the terminal and
// environment configured.
func (tr Trust) CheckName(cn string) error {
	env := tr.Env
	if env == "" {
		env = EnvTest
	}
	if tr.AllowLegacy && cn == "legacy-terminal-certificate."+env+".terminal.adyen.com" {
		return nil
	}
	m := commonName.FindStringSubmatch(cn)
	if m == nil || m[2] != env || (tr.POIID != "" && !strings.EqualFold(m[1], tr.POIID)) {
		return fmt.Errorf("%w: %q, want %s.%s.terminal.adyen.com", ErrTerminalName, cn, tr.POIID, env)
	}
	return nil
}
