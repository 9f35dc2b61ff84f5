//go:build linux

package powerfs_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// receiver is the head office: a webhook endpoint in the test process
// that records the invoice.created deliveries it got. It outlives every
// run, so the endpoint stored in the disk image stays valid.
type receiver struct {
	url string

	mu       sync.Mutex
	invoices map[string]int // invoice id -> deliveries received
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{url: "http://" + ln.Addr().String() + "/hook", invoices: map[string]int{}}
	srv := &http.Server{Handler: r}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

// ServeHTTP records an invoice.created delivery and answers 200 to
// every delivery (pings included).
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var body struct {
		Event string `json:"event"`
		Data  struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if body.Event == "invoice.created" {
		r.mu.Lock()
		r.invoices[body.Data.ID]++
		r.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// reset forgets what was received, for the next run.
func (r *receiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invoices = map[string]int{}
}

// received returns the ids of the invoices delivered so far.
func (r *receiver) received() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(r.invoices))
	for id := range r.invoices {
		out[id] = true
	}
	return out
}
