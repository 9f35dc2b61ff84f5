package device

import (
	"sync"
	"time"
)

// Direction of a traced frame.
type Direction string

// Directions, seen from posgate.
const (
	Sent     Direction = "tx"
	Received Direction = "rx"
)

// Frame is one traced frame. Drivers fill Summary with a decoded, masked
// description (command name, BMPs) and Hex with the raw bytes after masking
// card data, so a Trace never holds a card number.
type Frame struct {
	At      time.Time `json:"at"`
	Dir     Direction `json:"dir"`
	Summary string    `json:"summary"`
	Hex     string    `json:"hex"`
}

// Trace keeps the last frames of one device for the API and a technician
// to look at. It is safe for concurrent use; a nil *Trace drops frames.
type Trace struct {
	mu     sync.Mutex
	frames []Frame // ring buffer of cap size
	next   int     // index of the oldest frame once the ring is full
	full   bool
}

// NewTrace returns a Trace that keeps the last n frames (n ≥ 1).
func NewTrace(n int) *Trace {
	if n < 1 {
		panic("device: NewTrace needs n >= 1")
	}
	return &Trace{frames: make([]Frame, 0, n)}
}

// Add records f, evicting the oldest frame when the ring is full.
func (t *Trace) Add(f Frame) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.full {
		t.frames = append(t.frames, f)
		if len(t.frames) == cap(t.frames) {
			t.full = true
		}
		return
	}
	t.frames[t.next] = f
	t.next = (t.next + 1) % len(t.frames)
}

// Frames returns the kept frames, oldest first.
func (t *Trace) Frames() []Frame {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Frame, 0, len(t.frames))
	out = append(out, t.frames[t.next:]...)
	return append(out, t.frames[:t.next]...)
}
