package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/posgate/posgate/apikey"
)

// The CLI binds a key only to a certificate that exists, like the API.
func TestKeysCreateUnknownCertificate(t *testing.T) {
	cfg := writeConfig(t, "")
	_, err := cli(t, "keys", "create", "--config", cfg, "--label", "till", "--role", "pos", "--certificate", "cert_nope")
	if !errors.Is(err, apikey.ErrUnknownCertificate) {
		t.Fatalf("err=%v, want ErrUnknownCertificate", err)
	}
	out, err := cli(t, "keys", "list", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "till") {
		t.Fatalf("keys list after a refused create: %q", out)
	}
}
