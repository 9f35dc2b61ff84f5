package fiscal

import (
	"regexp"
	"testing"
	"time"
)

// Invoice ids sort by the millisecond they were made in (the unique
// indexes on them grow at the end), stay 16 base64url characters, and
// differ within a millisecond.
func TestInvoiceIDSortsByTime(t *testing.T) {
	base := time.Date(2026, 6, 12, 15, 5, 43, 0, time.UTC)
	var ids []string
	seen := map[string]bool{}
	for i := range 2000 {
		// Steps from 1 ms to past 2^36 ms, so every digit position moves.
		at := base.Add(time.Duration(i*i*i) * time.Millisecond)
		for range 3 {
			id := invoiceID(at)
			if !regexp.MustCompile(`^[A-Za-z0-9_-]{16}$`).MatchString(id) {
				t.Fatalf("invoiceID=%q, want 16 base64url characters", id)
			}
			if seen[id] {
				t.Fatalf("invoiceID repeated %q", id)
			}
			seen[id] = true
			ids = append(ids, id)
		}
		if n := len(ids); n > 3 && ids[n-3] <= ids[n-4] {
			t.Fatalf("id at %v (%q) sorts before the one a step earlier (%q)", at, ids[n-3], ids[n-4])
		}
	}
}
