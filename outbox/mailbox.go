package outbox

import "sync"

// mailbox carries the lane workers' results to the loop. It has no fixed
// capacity: the lanes' queues already bound how many results can be
// outstanding, and a worker never waits on the loop while it commits. A
// channel sized for every job the lanes could hold kept 2 MiB allocated
// (and scanned by every GC) on a box with no endpoint at all.
//
// It wakes the loop only once as many results wait as the loop asked for
// (wakeAt): at full speed a wake-up for every few results cost the loop
// an iteration, and the workers a goroutine hand-off, per handful of
// deliveries, for results that only wait for their batch anyway.
type mailbox struct {
	mu    sync.Mutex
	q     []result
	wake  int           // len(q) from which put signals ready; at least 1
	ready chan struct{} // holds a token while at least wake results may wait
}

func newMailbox() *mailbox {
	return &mailbox{wake: 1, ready: make(chan struct{}, 1)}
}

// signal leaves a token for the loop.
func (m *mailbox) signal() {
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// put hands one result to the loop.
func (m *mailbox) put(res result) {
	m.mu.Lock()
	m.q = append(m.q, res)
	full := len(m.q) >= m.wake
	m.mu.Unlock()
	if full {
		m.signal()
	}
}

// wakeAt sets how many waiting results wake the loop (at least one), and
// wakes it at once if as many already wait.
func (m *mailbox) wakeAt(n int) {
	m.mu.Lock()
	m.wake = max(n, 1)
	full := len(m.q) >= m.wake
	m.mu.Unlock()
	if full {
		m.signal()
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
		m.signal()
	}
	return dst
}
