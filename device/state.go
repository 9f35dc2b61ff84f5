package device

import (
	"sync"
	"time"
)

// StateKind says whether a device came online or went away. The values are
// the event names of DESIGN §6.
type StateKind string

// State kinds.
const (
	Connected    StateKind = "device.connected"
	Disconnected StateKind = "device.disconnected"
)

// StateChange is reported to subscribers when a Link opens or loses its port.
type StateChange struct {
	DeviceID string
	Kind     StateKind
	Port     string    // the spec the link opens
	Err      error     // why the line was lost; nil for Connected
	At       time.Time // when it happened
}

// Notifier fans state changes out to subscribers. The zero value is ready
// to use, and a nil *Notifier drops everything.
type Notifier struct {
	mu   sync.Mutex
	next int
	subs map[int]func(StateChange)
}

// Subscribe registers fn for every later state change and returns a func
// that removes it. fn is called synchronously from the goroutine that owns
// the port, in order; it must return quickly (enqueue into an outbox, send
// on a buffered channel) and must not call back into the Link.
func (n *Notifier) Subscribe(fn func(StateChange)) (unsubscribe func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.subs == nil {
		n.subs = make(map[int]func(StateChange))
	}
	id := n.next
	n.next++
	n.subs[id] = fn
	return func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		delete(n.subs, id)
	}
}

// Publish calls every subscriber with c.
func (n *Notifier) Publish(c StateChange) {
	if n == nil {
		return
	}
	n.mu.Lock()
	fns := make([]func(StateChange), 0, len(n.subs))
	for _, fn := range n.subs {
		fns = append(fns, fn)
	}
	n.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
}

// SubscribeChan is Subscribe for a channel with room for buf changes. A
// change that finds the channel full is dropped rather than blocking the
// port's goroutine; the returned func unsubscribes (and does not close the
// channel, which a late Publish could still be writing to).
func (n *Notifier) SubscribeChan(buf int) (<-chan StateChange, func()) {
	ch := make(chan StateChange, buf)
	unsub := n.Subscribe(func(c StateChange) {
		select {
		case ch <- c:
		default:
		}
	})
	return ch, unsub
}
