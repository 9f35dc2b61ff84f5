package main

import "testing"

// The production configuration the .deb installs loads and validates as it
// ships, so a fresh install starts.
func TestPackagedConfigLoads(t *testing.T) {
	cfg, err := loadConfig("../../packaging/posgate.toml", noenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8420" || cfg.DataDir != "/var/lib/posgate" {
		t.Fatalf("packaged config: listen %q data_dir %q", cfg.Listen, cfg.DataDir)
	}
}
