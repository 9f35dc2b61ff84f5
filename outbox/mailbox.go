package outbox

import "sync"

// mailbox carries the lane workers' results to the loop. It has no fixed
// capacity: the lanes' queues already bound how many results can be
// outstanding, and a worker never waits on the loop while it commits. A
// channel sized for every job the lanes could hold kept 2 MiB allocated
// (and scanned by every GC) on a box with no endpoint at all.
type mailbox struct {
	mu    sync.Mutex
	q     []result
	ready chan struct{} // holds a token while q may be non-empty
}

func newMailbox() *mailbox {
	return &mailbox{ready: make(chan struct{}, 1)}
}

// put hands one result to the loop.
func (m *mailbox) put(res result) {
	m.mu.Lock()
	m.q = append(m.q, res)
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// take appends up to limit waiting results to dst, oldest first. Results
// left behind keep the ready token, so the loop comes back for them.
func (m *mailbox) take(dst []result, limit int) []result {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := min(len(m.q), max(limit, 0))
	dst = append(dst, m.q[:n]...)
	rest := copy(m.q, m.q[n:])
	clear(m.q[rest:])
	m.q = m.q[:rest]
	if rest > 0 {
		select {
		case m.ready <- struct{}{}:
		default:
		}
	}
	return dst
}
