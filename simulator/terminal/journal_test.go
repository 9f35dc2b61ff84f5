package terminal

import "testing"

// The journal stays bounded in a long run once transactions are settled,
// and never loses one an end-of-day or a reversal still needs.
func TestJournalStaysBounded(t *testing.T) {
	const max = 8
	s := New(Options{Journal: max})
	receipt := 0
	add := func(approved bool) {
		receipt++
		s.journalAdd(Entry{ReceiptNo: receipt, Kind: Sale, Amount: 100, Approved: approved})
	}
	// Approved and not yet settled: all kept, past the bound.
	for range 20 {
		add(true)
	}
	if n := len(s.Journal()); n != 20 {
		t.Fatalf("journal holds %d of 20 unsettled sales", n)
	}
	// An end-of-day settles them; from then on the journal stays bounded.
	s.journalUpdate(func(j []Entry) {
		for i := range j {
			j[i].Settled = true
		}
	})
	for i := range 40 {
		add(i%2 == 0)
		if i == 20 {
			// Three approved sales not settled yet, then many declined.
			add(true)
			add(true)
			add(true)
		}
		// Settled and declined entries take at most the bound.
		j, kept := s.Journal(), 0
		for _, e := range j {
			if e.Settled || !e.Approved {
				kept++
			}
		}
		if kept > max {
			t.Fatalf("after %d more entries the journal holds %d settled or declined ones, bound %d", i+1, kept, max)
		}
	}
	j := s.Journal()
	if last := j[len(j)-1].ReceiptNo; last != receipt {
		t.Fatalf("newest entry is receipt %d, want %d", last, receipt)
	}
	unsettled := 0
	for _, e := range j {
		if e.Approved && !e.Settled {
			unsettled++
		}
	}
	// Every approved sale after the end-of-day is still there: 20 of the
	// alternating ones and the three.
	if unsettled != 23 {
		t.Fatalf("%d approved unsettled entries kept, want 23 (journal %d long)", unsettled, len(j))
	}
}
