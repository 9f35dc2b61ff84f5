package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/posgate/posgate/device/zvt"
)

// validateZVT checks the keys only a ZVT terminal has.
func (t TerminalConfig) validateZVT(k string) error {
	bad := func(key string, val any, format string, args ...any) error {
		return &ConfigError{Key: key, Value: val, Err: fmt.Errorf(format, args...)}
	}
	if t.Protocol != "zvt" {
		switch {
		case t.TLSRootCAFile != "":
			return bad(k+".tls_root_ca_file", strconv.Quote(t.TLSRootCAFile), "only for protocol \"zvt\" (nexo: root_ca_file)")
		case t.TLSFingerprint != "":
			return bad(k+".tls_fingerprint", strconv.Quote(t.TLSFingerprint), "only for protocol \"zvt\"")
		case t.SequenceIDs:
			return bad(k+".sequence_ids", true, "only for protocol \"zvt\"")
		case t.DiagnosisEvery.Duration != 0:
			return bad(k+".diagnosis_every", t.DiagnosisEvery, "only for protocol \"zvt\"")
		}
		return nil
	}
	tlsPort := strings.HasPrefix(t.Port, "tls://")
	switch {
	case t.TLSRootCAFile != "" && !tlsPort:
		return bad(k+".tls_root_ca_file", strconv.Quote(t.TLSRootCAFile), "only for a tls://host:port terminal")
	case t.TLSFingerprint != "" && !tlsPort:
		return bad(k+".tls_fingerprint", strconv.Quote(t.TLSFingerprint), "only for a tls://host:port terminal")
	case t.DiagnosisEvery.Duration != 0 && (t.DiagnosisEvery.Duration < time.Minute || t.DiagnosisEvery.Duration > 24*time.Hour):
		return bad(k+".diagnosis_every", t.DiagnosisEvery, "want 0s (off) or 1m to 24h")
	}
	if t.TLSFingerprint != "" {
		if _, err := zvt.ParseFingerprint(t.TLSFingerprint); err != nil {
			return bad(k+".tls_fingerprint", strconv.Quote(t.TLSFingerprint), "want the certificate's SHA-256 as 64 hex digits, colons allowed")
		}
	}
	return nil
}

// zvtTLS builds the TLS settings of terminal k's tls:// port from
// tls_root_ca_file and tls_fingerprint; nil (the system roots) when
// neither is set.
func (t TerminalConfig) zvtTLS(k string) (*tls.Config, error) {
	if t.TLSRootCAFile == "" && t.TLSFingerprint == "" {
		return nil, nil
	}
	var roots []byte
	if t.TLSRootCAFile != "" {
		var err error
		if roots, err = os.ReadFile(t.TLSRootCAFile); err != nil {
			return nil, &ConfigError{Key: k + ".tls_root_ca_file", Value: strconv.Quote(t.TLSRootCAFile), Err: err}
		}
	}
	var pin []byte
	if t.TLSFingerprint != "" {
		var err error
		if pin, err = zvt.ParseFingerprint(t.TLSFingerprint); err != nil {
			return nil, &ConfigError{Key: k + ".tls_fingerprint", Value: strconv.Quote(t.TLSFingerprint), Err: err}
		}
	}
	cfg, err := zvt.TLSConfig(roots, pin)
	if err != nil {
		return nil, &ConfigError{Key: k + ".tls_root_ca_file", Value: strconv.Quote(t.TLSRootCAFile), Err: err}
	}
	return cfg, nil
}
