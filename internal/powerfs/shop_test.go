//go:build linux

package powerfs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
)

// zvtFrame is one APDU on the terminal line, as the tap saw it.
type zvtFrame struct {
	fromECR      bool // posgate to the terminal
	class, instr byte
	ops          int64 // filesystem ops the daemon had made when it passed
}

func (f zvtFrame) String() string {
	dir := "PT→ECR"
	if f.fromECR {
		dir = "ECR→PT"
	}
	return fmt.Sprintf("%s %02X %02X @op %d", dir, f.class, f.instr, f.ops)
}

// tillTerminal is the shop's card terminal: a ZVT simulator served on
// 127.0.0.1 by the test process, with its own power (it outlives the
// daemon and keeps its journal across every restart of a run), behind a
// tap that records every APDU on the line. The tap splits the TCP stream
// into APDUs from the spec, independently of device/zvt: CLASS, INSTR,
// a length byte, or FF and a two-byte little-endian length, then the data
// (ZVT 13.x, §2.2 APDU; research/payment-protocols.md).
type tillTerminal struct {
	sim  *terminal.Simulator
	addr string // the tap: what posgate dials

	mu     sync.Mutex
	frames []zvtFrame
	ops    func() int64 // the FS op counter of the current mount, or nil
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newTillTerminal(t *testing.T) *tillTerminal {
	t.Helper()
	sim := terminal.New(terminal.Options{Step: 5 * time.Millisecond, T3: 2 * time.Second, Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := simulator.ServeTCP(ctx, "127.0.0.1:0", sim.ServeTCP, zerolog.Nop())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	tt := &tillTerminal{sim: sim, addr: ln.Addr().String(), cancel: cancel}
	context.AfterFunc(ctx, func() { ln.Close() })
	target := srv.Addr()
	tt.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tt.wg.Go(func() { tt.pipe(ctx, c, target) })
		}
	})
	return tt
}

// stop unplugs the terminal.
func (tt *tillTerminal) stop() {
	tt.cancel()
	done := make(chan struct{})
	go func() { tt.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
	}
}

// setOps sets the op counter frames are stamped with.
func (tt *tillTerminal) setOps(ops func() int64) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	tt.ops = ops
}

// pipe relays one connection, APDU by APDU, both ways.
func (tt *tillTerminal) pipe(ctx context.Context, ecr net.Conn, target string) {
	defer ecr.Close()
	var d net.Dialer
	pt, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return
	}
	defer pt.Close()
	stop := context.AfterFunc(ctx, func() { ecr.Close(); pt.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { tt.relay(ecr, pt, true); pt.Close() })
	tt.relay(pt, ecr, false)
	ecr.Close()
	wg.Wait()
}

func (tt *tillTerminal) relay(from, to net.Conn, fromECR bool) {
	for {
		hdr := make([]byte, 3, 5)
		if _, err := io.ReadFull(from, hdr); err != nil {
			return
		}
		n := int(hdr[2])
		if hdr[2] == 0xFF {
			ext := make([]byte, 2)
			if _, err := io.ReadFull(from, ext); err != nil {
				return
			}
			hdr = append(hdr, ext...)
			n = int(ext[0]) | int(ext[1])<<8
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(from, data); err != nil {
			return
		}
		tt.mu.Lock()
		f := zvtFrame{fromECR: fromECR, class: hdr[0], instr: hdr[1]}
		if tt.ops != nil {
			f.ops = tt.ops()
		}
		tt.frames = append(tt.frames, f)
		tt.mu.Unlock()
		if _, err := to.Write(append(hdr, data...)); err != nil {
			return
		}
	}
}

// count returns how many APDUs class/instr posgate sent.
func (tt *tillTerminal) count(class, instr byte) int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	n := 0
	for _, f := range tt.frames {
		if f.fromECR && f.class == class && f.instr == instr {
			n++
		}
	}
	return n
}

// log returns the frames seen, for a failure message.
func (tt *tillTerminal) log() []zvtFrame {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return append([]zvtFrame(nil), tt.frames...)
}

// answer is a raw API answer: status, error code and headers.
type answer struct {
	status int
	code   string // error.code, if the answer is an error
	header http.Header
	body   []byte
}

// send sends a request and returns the answer whatever its status; err is
// set only when no whole answer came.
func (c *client) send(method, path, idemKey string, body []byte) (answer, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("X-Api-Key", c.apiKey)
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		a.code = e.Error.Code
	}
	return a, nil
}

// payment is the part of a payment the checks read.
type payment struct {
	ID                string     `json:"id"`
	Type              string     `json:"type"`
	Status            string     `json:"status"`
	Resolution        string     `json:"resolution"`
	Amount            int64      `json:"amount"`
	Reference         string     `json:"reference"`
	OriginalPaymentID string     `json:"original_payment_id"`
	ReceiptNumber     int        `json:"receipt_number"`
	TraceNumber       int        `json:"trace_number"`
	StartedAt         *time.Time `json:"started_at"`
	Reversal          *struct {
		By string `json:"by"`
	} `json:"reversal"`
}

// settled reports whether the payment has ended and no session is open.
func (p payment) settled() bool {
	switch p.Status {
	case "completed", "failed", "cancelled":
		return true
	case "timeout":
		return p.Resolution != ""
	}
	return false
}

// waitTerminal waits until terminal id takes payments.
func waitTerminal(c *client, id string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		var dev struct {
			State     string `json:"state"`
			LastError string `json:"last_error"`
		}
		err := c.get("/v1/devices/"+id, &dev)
		if err == nil && dev.State == "online" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("terminal %s not online within %v: %q %q %v", id, d, dev.State, dev.LastError, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errNoAnswer is waitPayment's error when the daemon gave no answer.
var errNoAnswer = errors.New("no answer")

// waitPayment polls a payment until it is settled or d passes; it gives
// up at once, with errNoAnswer, when the daemon does not answer.
func waitPayment(c *client, id string, d time.Duration) (payment, error) {
	deadline := time.Now().Add(d)
	for {
		var p payment
		a, err := c.send("GET", "/v1/payments/"+id+"?wait=1s", "", nil)
		if err != nil {
			return p, fmt.Errorf("payment %s: %w: %v", id, errNoAnswer, err)
		}
		if a.status == http.StatusOK {
			if err := json.Unmarshal(a.body, &p); err != nil {
				return p, fmt.Errorf("payment %s: %v: %s", id, err, a.body)
			}
			if p.settled() {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("payment %s not settled within %v: %d %s", id, d, a.status, a.body)
		}
	}
}

// jsonInto decodes an answer's body.
func jsonInto(b []byte, v any) error { return json.Unmarshal(b, v) }
