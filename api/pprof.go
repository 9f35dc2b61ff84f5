package api

import (
	"net/http"
	"net/http/pprof"
)

// handlePprof serves the Go runtime's profiles (net/http/pprof) under
// /debug/pprof/, so a slow box in the field can be profiled:
//
//	go tool pprof -http : 'http://127.0.0.1:8080/debug/pprof/profile?seconds=30'
//
// with the admin key in X-Api-Key (pprof's -http flag cannot send it; use
// curl -o and open the file). Registered only with Deps.Pprof (config
// debug.pprof = true) and only behind an admin key: profiles show stack
// contents and the command line. A CPU profile or trace longer than the
// server's WriteTimeout is refused by pprof itself.
func handlePprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also heap, goroutine, allocs, block, mutex…
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
