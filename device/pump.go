package device

import (
	"sync"
	"time"
)

// pumpPort is the Port a Link hands to jobs. A single pump goroutine reads
// the real port with no timeout (so a Close or an unplug ends it at once)
// and hands chunks over a channel; Read here applies the job's read timeout
// with a timer and keeps the serial (0, nil) convention.
type pumpPort struct {
	p       Port
	data    chan []byte
	dead    chan struct{} // closed when the pump saw an error
	quit    chan struct{} // closed by the owner before it closes the port
	stopped chan struct{} // closed when the pump goroutine returned
	err     error         // set before dead is closed

	mu      sync.Mutex // guards pending and timeout; only the owner uses them
	pending []byte
	timeout time.Duration
}

func newPumpPort(p Port) *pumpPort {
	pp := &pumpPort{p: p, data: make(chan []byte, 64), dead: make(chan struct{}),
		quit: make(chan struct{}), stopped: make(chan struct{}), timeout: -1}
	// The pump blocks in Read; SetReadTimeout(-1) asks for exactly that.
	_ = p.SetReadTimeout(-1)
	go pp.pump()
	return pp
}

func (pp *pumpPort) pump() {
	defer close(pp.stopped)
	buf := make([]byte, 4096)
	for {
		n, err := pp.p.Read(buf)
		if n > 0 {
			b := make([]byte, n)
			copy(b, buf[:n])
			select {
			case pp.data <- b:
			case <-pp.quit:
				return
			}
		}
		if err != nil {
			pp.err = err
			close(pp.dead)
			return
		}
	}
}

// shutdown closes the real port and waits for the pump to return.
func (pp *pumpPort) shutdown() {
	close(pp.quit)
	pp.p.Close()
	<-pp.stopped
}

func (pp *pumpPort) isDead() bool {
	select {
	case <-pp.dead:
		return true
	default:
		return false
	}
}

// discard drops bytes left over from a finished job.
func (pp *pumpPort) discard() {
	pp.mu.Lock()
	pp.pending = nil
	pp.mu.Unlock()
	for {
		select {
		case <-pp.data:
		default:
			return
		}
	}
}

func (pp *pumpPort) Read(b []byte) (int, error) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if len(pp.pending) == 0 {
		var timeout <-chan time.Time
		if pp.timeout >= 0 {
			t := time.NewTimer(pp.timeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case pp.pending = <-pp.data:
		case <-pp.dead:
			select { // bytes that arrived before the error still count
			case pp.pending = <-pp.data:
			default:
				return 0, pp.err
			}
		case <-timeout:
			return 0, nil
		}
	}
	n := copy(b, pp.pending)
	pp.pending = pp.pending[n:]
	return n, nil
}

func (pp *pumpPort) Write(b []byte) (int, error) { return pp.p.Write(b) }

// Close closes the real port; the Link then reconnects.
func (pp *pumpPort) Close() error { return pp.p.Close() }

func (pp *pumpPort) SetReadTimeout(d time.Duration) error {
	pp.mu.Lock()
	pp.timeout = d
	pp.mu.Unlock()
	return nil
}
