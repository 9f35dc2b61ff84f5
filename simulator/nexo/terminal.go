package nexo

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	nx "github.com/posgate/posgate/device/nexo"
)

// Outcomes by amount, in minor units: the last two digits pick the
// scenario (DESIGN §7). Anything else approves.
const (
	AmountDecline       = 51 // Failure/Refusal
	AmountNoResult      = 52 // no answer until the sale system aborts, then Failure/Aborted
	AmountCustomerAbort = 53 // the customer cancels: Failure/Cancel
	AmountApproveAfter  = 54 // approves only after the sale system's abort
	AmountSlow          = 55 // Options.Slow, then approves
	AmountLost          = 56 // approves, then drops the connection: the answer is lost
	AmountPartial       = 57 // approves half the amount (Result Partial)
)

// Options configures a Terminal; zero values take the defaults.
type Options struct {
	POIID      string        // default "V400m-324688179"
	Env        string        // "test" (default) or "live": the leaf is POIID.<env>.terminal.adyen.com
	KeyID      string        // default "Key1"
	KeyVersion int           // default 1
	Passphrase string        // default "posgate-simulator"
	Step       time.Duration // card and PIN time of an ordinary sale; default 300 ms
	Slow       time.Duration // length of AmountSlow; default 5 s
	Delay      time.Duration // extra wait before every payment answer ("answer after N s")
	// CardWait is the terminal's own card time-out, which ends a sale
	// nobody aborts (AmountNoResult); default 120 s.
	CardWait time.Duration
	Log      zerolog.Logger
	Now      func() time.Time
}

// Kind of a journal entry.
type Kind string

// Journal entry kinds.
const (
	Sale     Kind = "sale"
	Refund   Kind = "refund"
	Reversal Kind = "reversal"
)

// Entry is a transaction the terminal approved (committed).
type Entry struct {
	Kind      Kind
	Amount    int64 // minor units
	Currency  string
	SaleTxID  string // SaleTransactionID.TransactionID
	POITxID   string // POITransactionID.TransactionID
	ServiceID string
	Reversed  bool   // a later reversal voided it
	OrigPOITx string // for a reversal or referenced refund: the transaction it names
	At        time.Time
}

// Terminal is a simulated nexo terminal.
type Terminal struct {
	opts  Options
	key   *nx.Key
	chain *chain
	log   zerolog.Logger

	mu        sync.Mutex // guards the fields below
	seq       int
	journal   []Entry
	running   *dialogue            // the payment in progress
	done      map[string]*finished // by ServiceID, for TransactionStatus
	lastPay   string               // ServiceID of the last payment
	seen      map[string]time.Time // ServiceIDs of the last 48 h
	dropNext  bool
	wrongKey  bool
	ignoreAbt bool
	requests  []nx.Header // every request header, in order
}

// dialogue is a payment the terminal is working on.
type dialogue struct {
	serviceID string
	abort     chan struct{} // closed by Abort
	once      sync.Once
}

// finished is a transaction's stored response, for TransactionStatus.
type finished struct {
	header nx.Header
	body   nx.RepeatedMessageBody
}

// New builds a terminal and its certificate chain.
func New(o Options) (*Terminal, error) {
	if o.POIID == "" {
		o.POIID = "V400m-324688179"
	}
	if o.Env == "" {
		o.Env = nx.EnvTest
	}
	if o.KeyID == "" {
		o.KeyID = "Key1"
	}
	if o.KeyVersion == 0 {
		o.KeyVersion = 1
	}
	if o.Passphrase == "" {
		o.Passphrase = "posgate-simulator"
	}
	if o.Step == 0 {
		o.Step = 300 * time.Millisecond
	}
	if o.Slow == 0 {
		o.Slow = 5 * time.Second
	}
	if o.CardWait == 0 {
		o.CardWait = 120 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	k, err := nx.DeriveKey(o.Passphrase, o.KeyID, o.KeyVersion)
	if err != nil {
		return nil, err
	}
	ch, err := newChain(o.POIID, o.Env, o.Now())
	if err != nil {
		return nil, err
	}
	return &Terminal{opts: o, key: k, chain: ch, log: o.Log, done: map[string]*finished{}, seen: map[string]time.Time{}}, nil
}

// RootPEM is the generated root a client must trust.
func (t *Terminal) RootPEM() []byte { return t.chain.rootPEM }

// TLSConfig serves the generated leaf and intermediate.
func (t *Terminal) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{t.chain.leaf}}
}

// Journal returns a copy of the committed transactions.
func (t *Terminal) Journal() []Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Entry(nil), t.journal...)
}

// Requests returns the header of every request the terminal decrypted.
func (t *Terminal) Requests() []nx.Header {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]nx.Header(nil), t.requests...)
}

// DropNextAnswer makes the terminal process the next payment and then
// close the connection instead of answering (a lost response).
func (t *Terminal) DropNextAnswer() {
	t.mu.Lock()
	t.dropNext = true
	t.mu.Unlock()
}

// WrongKey makes the terminal hold another key than the sale system:
// every message gets the terminal's crypto error.
func (t *Terminal) WrongKey(on bool) {
	t.mu.Lock()
	t.wrongKey = on
	t.mu.Unlock()
}

// IgnoreAbort makes the terminal acknowledge aborts and carry on.
func (t *Terminal) IgnoreAbort(on bool) {
	t.mu.Lock()
	t.ignoreAbt = on
	t.mu.Unlock()
}

// Server is a running simulator.
type Server struct {
	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup
}

// Addr is where it listens.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving and ends open connections.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.wg.Wait()
	return err
}

// Serve listens on addr (TLS) and serves until Close or ctx ends.
func (t *Terminal) Serve(ctx context.Context, addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("nexo simulator listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /nexo", t.handle)
	mux.HandleFunc("POST /nexo/", t.handle)
	s := &Server{ln: ln, srv: &http.Server{Handler: mux, TLSConfig: t.TLSConfig(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    log.New(io.Discard, "", 0)}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.srv.ServeTLS(ln, "", "")
	}()
	context.AfterFunc(ctx, func() { s.srv.Close() })
	return s, nil
}

// cryptoError is what an Adyen terminal answers to a message it cannot
// decrypt or verify (research/nexo.md R6; node library issue #762).
const cryptoError = `{"errors": ["Nexo Service: crypto error (3)"], "ServiceID": "-NULL-"}`

func (t *Terminal) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	_, pt, err := nx.Open(nx.Single(t.key), body)
	t.mu.Lock()
	if t.wrongKey && err == nil {
		err = nx.ErrCrypto
	}
	t.mu.Unlock()
	var fe *nx.FormatError
	switch {
	case errors.Is(err, nx.ErrCrypto):
		t.log.Warn().Msg("nexo simulator: crypto error")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, cryptoError)
		return
	case errors.As(err, &fe):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"errors": []string{"MessageFormat: " + fe.Reason}})
		return
	case err != nil:
		http.Error(w, "internal", http.StatusInternalServerError)
		return
	}
	var m nx.RequestMessage
	if err := json.Unmarshal(pt, &m); err != nil || m.SaleToPOIRequest == nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"errors": ["At toplevel, field SaleToPOIRequest: Missing"]}`)
		return
	}
	req := m.SaleToPOIRequest
	h := req.MessageHeader
	t.mu.Lock()
	t.requests = append(t.requests, h)
	t.mu.Unlock()
	resp := &nx.Response{MessageHeader: h}
	resp.MessageHeader.MessageType = nx.TypeResponse
	if h.POIID != t.opts.POIID {
		t.reply(w, r, resp, failure("NotAllowed", "message=POIID+"+h.POIID+"+is+not+this+terminal"), h)
		return
	}
	if !t.freshServiceID(h.ServiceID) {
		t.reply(w, r, resp, failure("MessageFormat", "message=ServiceID+already+used"), h)
		return
	}
	switch {
	case req.PaymentRequest != nil && h.MessageCategory == nx.CategoryPayment:
		t.payment(w, r, resp, req.PaymentRequest)
	case req.AbortRequest != nil && h.MessageCategory == nx.CategoryAbort:
		t.abort(req.AbortRequest)
		w.WriteHeader(http.StatusOK) // 200 and no body, as Adyen documents
	case req.TransactionStatusRequest != nil && h.MessageCategory == nx.CategoryTransactionStatus:
		resp.TransactionStatusResponse = t.status(req.TransactionStatusRequest)
		t.send(w, resp)
	case req.ReversalRequest != nil && h.MessageCategory == nx.CategoryReversal:
		resp.ReversalResponse = t.reversal(h, req.ReversalRequest)
		t.send(w, resp)
	case req.DiagnosisRequest != nil && h.MessageCategory == nx.CategoryDiagnosis:
		t.mu.Lock()
		status := "OK"
		if t.running != nil {
			status = "Busy"
		}
		t.mu.Unlock()
		resp.DiagnosisResponse = &nx.DiagnosisResponse{Response: nx.Result{Result: nx.ResultSuccess},
			POIStatus: &nx.POIStatus{GlobalStatus: status, CommunicationOKFlag: true, PEDOKFlag: true, CardReaderOKFlag: true, SecurityOKFlag: true}}
		t.send(w, resp)
	default:
		t.reply(w, r, resp, failure("MessageFormat", "message=unsupported+message"), h)
	}
}

func failure(cond, additional string) nx.Result {
	return nx.Result{Result: nx.ResultFailure, ErrorCondition: cond, AdditionalResponse: additional}
}

// reply answers a request with a failure in the response type its
// category calls for.
func (t *Terminal) reply(w http.ResponseWriter, r *http.Request, resp *nx.Response, res nx.Result, h nx.Header) {
	switch h.MessageCategory {
	case nx.CategoryPayment:
		resp.PaymentResponse = &nx.PaymentResponse{Response: res}
	case nx.CategoryReversal:
		resp.ReversalResponse = &nx.ReversalResponse{Response: res}
	case nx.CategoryTransactionStatus:
		resp.TransactionStatusResponse = &nx.TransactionStatusResponse{Response: res}
	case nx.CategoryDiagnosis:
		resp.DiagnosisResponse = &nx.DiagnosisResponse{Response: res}
	default:
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"errors": []string{res.ErrorCondition + ": " + res.AdditionalResponse}})
		return
	}
	t.send(w, resp)
}

// freshServiceID records id and reports whether it was unused in the
// last 48 hours.
func (t *Terminal) freshServiceID(id string) bool {
	if id == "" || len(id) > 10 {
		return false
	}
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, at := range t.seen {
		if now.Sub(at) > 48*time.Hour {
			delete(t.seen, k)
		}
	}
	if _, dup := t.seen[id]; dup {
		return false
	}
	t.seen[id] = now
	return true
}

// send encrypts resp with a fresh nonce and writes it.
func (t *Terminal) send(w http.ResponseWriter, resp *nx.Response) {
	pt, err := json.Marshal(nx.ResponseMessage{SaleToPOIResponse: resp})
	if err != nil {
		http.Error(w, "internal", http.StatusInternalServerError)
		return
	}
	body, err := nx.Seal(t.key, nx.WrapResponse, &resp.MessageHeader, pt, nil)
	if err != nil {
		http.Error(w, "internal", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}

func (t *Terminal) timestamp() string { return t.opts.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

// nextPOITx issues a POITransactionID like Adyen's "tenderReference.pspReference".
func (t *Terminal) nextPOITx() nx.TransactionID {
	t.seq++
	return nx.TransactionID{TransactionID: fmt.Sprintf("SIM%08d.PSP%012d", t.seq, 880000000000+t.seq), TimeStamp: t.timestamp()}
}

var errClosed = errors.New("connection closed")

// wait sleeps d, ending early with errClosed if the client went away.
func wait(r *http.Request, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-r.Context().Done():
		return errClosed
	case <-tm.C:
		return nil
	}
}
