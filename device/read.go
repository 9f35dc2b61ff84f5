package device

import (
	"context"
	"fmt"
	"io"
	"time"
)

// TimeoutReader is the part of a Port that Read needs.
type TimeoutReader interface {
	io.Reader
	SetReadTimeout(d time.Duration) error
}

// pollInterval bounds a single blocking read so the caller's ctx is checked
// at least this often.
const pollInterval = 100 * time.Millisecond

// Read reads at least one byte into b before deadline. It is the one place
// that turns the transport's (0, nil) timeout into ErrTimeout: it polls with
// SetReadTimeout(min(time until deadline, 100 ms)) and checks ctx between
// polls. A read error is returned as is (an unplug shows up as
// serial.PortClosed, EIO or io.EOF).
func Read(ctx context.Context, p TimeoutReader, b []byte, deadline time.Time) (int, error) {
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, ErrTimeout
		}
		if err := p.SetReadTimeout(min(left, pollInterval)); err != nil {
			return 0, fmt.Errorf("set read timeout: %w", err)
		}
		n, err := p.Read(b)
		if n > 0 || err != nil {
			return n, err
		}
	}
}
