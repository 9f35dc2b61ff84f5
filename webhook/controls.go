package webhook

import (
	"fmt"
	"math"
)

// Bounds of the per-endpoint controls.
const (
	maxRate  = 10000 // requests per second
	maxBurst = 10000
)

// withDefaults fills in a burst for a rate given without one: one
// second's worth of requests, at least 1.
func (r RateLimit) withDefaults() RateLimit {
	if r.PerSecond > 0 && r.Burst == 0 {
		r.Burst = max(1, int(math.Ceil(r.PerSecond)))
	}
	if r.PerSecond == 0 {
		r.Burst = 0
	}
	return r
}

// validateControls checks the per-endpoint delivery controls.
func validateControls(r RateLimit, ordering string) error {
	switch {
	case math.IsNaN(r.PerSecond) || r.PerSecond < 0 || r.PerSecond > maxRate:
		return &FieldError{Field: "rate_limit.per_second", Msg: fmt.Sprintf("must be 0 (no limit) to %d requests per second", maxRate)}
	case r.PerSecond > 0 && r.PerSecond < 0.001:
		return &FieldError{Field: "rate_limit.per_second", Msg: "must be at least 0.001 (one request in 1000 s) or 0 for no limit"}
	case r.Burst < 0 || r.Burst > maxBurst:
		return &FieldError{Field: "rate_limit.burst", Msg: fmt.Sprintf("must be 1 to %d", maxBurst)}
	}
	if ordering != OrderingNone && ordering != OrderingFIFO {
		return &FieldError{Field: "ordering", Msg: `must be "none" or "fifo"`}
	}
	return nil
}
