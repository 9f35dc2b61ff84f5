package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	mdLink   = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	codePath = regexp.MustCompile("`((?:\\.\\./|\\./)?(?:[a-z0-9_.-]+/)+[a-zA-Z0-9_.-]+\\.(?:go|md|toml|sql|sh|p12|pem|json))`")
)

// TestDocLinksResolve: every relative link and every file path named in
// README.md and docs/*.md resolves inside the repository.
func TestDocLinksResolve(t *testing.T) {
	root, _ := filepath.Abs("../..")
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		for _, m := range mdLink.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			p := filepath.Clean(filepath.Join(filepath.Dir(f), target))
			if !strings.HasPrefix(p, root+string(filepath.Separator)) {
				t.Errorf("%s links outside the repository: %s", rel, target)
			} else if _, err := os.Stat(p); err != nil {
				t.Errorf("%s links to a missing file: %s", rel, target)
			}
		}
		for _, m := range codePath.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.HasPrefix(target, "data/") || strings.HasPrefix(target, "/") {
				continue // made at run time
			}
			// Paths are written from the repository root, or relative to the page.
			p1 := filepath.Join(root, target)
			p2 := filepath.Join(filepath.Dir(f), target)
			_, e1 := os.Stat(p1)
			_, e2 := os.Stat(p2)
			if e1 != nil && e2 != nil {
				t.Errorf("%s names a file that is not in the repository: %s", rel, target)
			}
		}
	}
}

// TestBenchFiguresHaveOneHome: latency percentiles are written only in
// README's Performance table and docs/performance.md (its long form, with
// the machine and the profiles: issue 17), both from `make bench`, so no
// other page can quote a different figure for the same benchmark.
func TestBenchFiguresHaveOneHome(t *testing.T) {
	figure := regexp.MustCompile(`p(50|90|99)\s*(≈|=|:|of)?\s*\d`)
	files, _ := filepath.Glob("../../docs/*.md")
	for _, f := range files {
		if filepath.Base(f) == "performance.md" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := figure.Find(b); m != nil {
			t.Errorf("%s quotes a percentile (%q): put figures in README's Performance table or docs/performance.md only", f, m)
		}
	}
}
