package nexo

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// serviceIDs issues ServiceIDs: at most 10 characters and unique per
// terminal over 48 hours (Adyen "Verify transaction status"). Each is
// the base-36 millisecond clock, made strictly increasing, so no two from
// one process collide, and a restarted posgate continues above the last
// it issued as long as the clock did not step back by more than the gap
// since then. Nine base-36 digits cover 3,000 years.
type serviceIDs struct {
	mu   sync.Mutex
	last int64
	now  func() time.Time
}

func (s *serviceIDs) next() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.now().UnixMilli()
	if n <= s.last {
		n = s.last + 1
	}
	s.last = n
	id := strconv.FormatInt(n, 36)
	return strings.Repeat("0", max(0, 9-len(id))) + id
}
