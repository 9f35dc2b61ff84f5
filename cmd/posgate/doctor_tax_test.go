package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posgate/posgate/simulator/taxservice"
)

// doctor checks the configured tax service with the daemon's trust (the
// system roots plus fiscal.service_ca_file): reachable with the CA, a
// failure without it, and a failure when nothing answers.
func TestDoctorTaxService(t *testing.T) {
	sim, err := taxservice.Start(taxservice.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, sim.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	fiscal := func(url, caFile string) string {
		return fmt.Sprintf(`
[fiscal]
tin = "12345678"
business_unit = "bb123bb123"
tcr = "cc123cc123"
software = "ss123ss123"
operator = "oo123oo123"
seller_name = "Shop d.o.o."
seller_address = "Njegoseva 1"
seller_town = "Podgorica"
service_url = %q
service_ca_file = %q
`, url, caFile)
	}
	doctorLine := func(cfg string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), []string{"doctor", "--config", cfg}, noenv, &out, &out)
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, "tax service") {
				return l, err
			}
		}
		t.Fatalf("doctor printed no tax service line:\n%s", out.String())
		return "", err
	}

	if l, _ := doctorLine(writeConfig(t, fiscal(sim.URL(), ca))); !strings.HasPrefix(l, "ok") {
		t.Errorf("with the service's CA: %q, want ok", l)
	}
	otherCA := filepath.Join(t.TempDir(), "other.pem")
	other, _ := taxservice.Start(taxservice.Options{})
	os.WriteFile(otherCA, other.CAPEM(), 0o600)
	other.Close()
	if l, err := doctorLine(writeConfig(t, fiscal(sim.URL(), otherCA))); !strings.HasPrefix(l, "fail") || err == nil {
		t.Errorf("with another CA: %q %v, want fail and an error", l, err)
	}
	url := sim.URL()
	sim.Close()
	if l, err := doctorLine(writeConfig(t, fiscal(url, ca))); !strings.HasPrefix(l, "fail") || err == nil {
		t.Errorf("with the service down: %q %v, want fail", l, err)
	}
}
