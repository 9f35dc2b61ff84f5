package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// handleMetrics serves the Prometheus text format: the API's own request
// counters and latencies, whatever gauges other components registered on
// the same set (devices, outbox backlog), and process figures (RSS, fds,
// CPU). It needs no key, like /healthz: it listens on loopback and shows
// no secret, id or amount.
func handleMetrics(set *metrics.Set) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		set.WritePrometheus(w)
		metrics.WritePrometheus(w, false) // the default set: outcome counters (package observe)
		metrics.WriteProcessMetrics(w)
	})
}

// observeRequest counts a finished request by route and status and
// records its duration by route.
func observeRequest(set *metrics.Set, route string, status int, d time.Duration) {
	set.GetOrCreateCounter(fmt.Sprintf(`posgate_http_requests_total{route=%s,status="%d"}`,
		strconv.Quote(route), status)).Inc()
	set.GetOrCreateSummary(fmt.Sprintf(`posgate_http_request_duration_seconds{route=%s}`,
		strconv.Quote(route))).Update(d.Seconds())
}
