package api_test

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/posgate/posgate/api"
)

var update = flag.Bool("update", false, "rewrite docs/api.md")

// TestAPIDoc fails when docs/api.md is not what api/routes.go generates.
// Run `go test ./api -run TestAPIDoc -update` after changing a route.
func TestAPIDoc(t *testing.T) {
	want, err := api.Markdown()
	if err != nil {
		t.Fatal(err)
	}
	const path = "../docs/api.md"
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; run go test ./api -run TestAPIDoc -update", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/api.md differs from the routes table; run go test ./api -run TestAPIDoc -update")
	}
}
