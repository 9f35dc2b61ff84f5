package terminal

import "testing"

// The journal stays bounded in a long run, and an end-of-day still
// counts the unsettled transactions it dropped.
func TestJournalStaysBounded(t *testing.T) {
	const max, sales = 8, 50
	s := New(Options{Journal: max})
	for i := 1; i <= sales; i++ {
		s.journalAdd(Entry{ReceiptNo: i, Kind: Sale, Amount: 100, Approved: true})
		if n := len(s.Journal()); n > max {
			t.Fatalf("after %d entries the journal holds %d, want at most %d", i, n, max)
		}
	}
	// One refund and one declined sale, kept.
	s.journalAdd(Entry{ReceiptNo: sales + 1, Kind: Refund, Amount: 30, Approved: true})
	s.journalAdd(Entry{ReceiptNo: sales + 2, Kind: Sale, Amount: 999, Approved: false})
	j := s.Journal()
	if last := j[len(j)-1].ReceiptNo; last != sales+2 {
		t.Fatalf("newest entry is receipt %d, want %d", last, sales+2)
	}
	total, n := s.settleDay()
	if total != sales*100-30 || n != sales+1 {
		t.Fatalf("end-of-day total %d over %d, want %d over %d", total, n, sales*100-30, sales+1)
	}
	// Settled once: the next day starts from zero.
	if total, n := s.settleDay(); total != 0 || n != 0 {
		t.Fatalf("second end-of-day %d over %d, want 0 over 0", total, n)
	}
}
