package taxservice

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

const (
	nsFS   = "https://efi.tax.gov.me/fs/schema"
	nsSOAP = "http://schemas.xmlsoap.org/soap/envelope/"
	nsDSig = "http://www.w3.org/2000/09/xmldsig#"
)

// Fault switches: what the next requests get instead of an answer.
const (
	FaultCode   = "code"   // a SOAP fault with the given code
	Fault503    = "503"    // HTTP 503 with no body
	FaultHang   = "hang"   // no answer at all until the client gives up
	FaultDrop   = "drop"   // the connection is closed without an answer
	FaultBroken = "broken" // HTTP 200 with a body that is not XML
)

// Options configure a Server.
type Options struct {
	// Addr is the loopback address to listen on. Default 127.0.0.1:0.
	Addr string
	// RequireInitialDeposit refuses cash invoices (fault 58) of a day
	// on which the TCR registered no INITIAL cash deposit.
	RequireInitialDeposit bool
	// SubseqTolerance is how far IssueDateTime may be from SendDateTime
	// without SubseqDelivType. Default 60 s.
	SubseqTolerance time.Duration
	// MaxHang bounds a hang. Default 2 min.
	MaxHang time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Request is a request the simulator received, as tests inspect it.
type Request struct {
	Kind            string // RegisterInvoiceRequest, …
	SubseqDelivType string
	IIC             string
	InvOrdNum       string
	Body            []byte
	Answer          string // FIC, TCR code, deposit code; "" if refused
	Fault           string // the fault code sent, if any
}

// Server is a running simulator.
type Server struct {
	opts    Options
	ln      net.Listener
	srv     *http.Server
	caPEM   []byte
	sigKey  *rsa.PrivateKey
	sigCert *x509.Certificate

	mu       sync.Mutex
	faults   []fault
	fics     map[string]string // IIC → FIC
	deposits map[string]bool   // TCR + day → initial deposit registered
	requests []Request
	tcrs     int
	hangs    chan struct{}
}

type fault struct {
	kind, code string
}

// Start listens on opts.Addr (loopback only) and serves until Close.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.SubseqTolerance == 0 {
		opts.SubseqTolerance = time.Minute
	}
	if opts.MaxHang == 0 {
		opts.MaxHang = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("taxservice: address %q: %w", opts.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("taxservice: %s is not a loopback address", opts.Addr)
	}
	s := &Server{opts: opts, fics: map[string]string{}, deposits: map[string]bool{}, hangs: make(chan struct{})}
	tlsCert, err := s.makeCerts()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("taxservice: listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12}}
	go s.srv.ServeTLS(ln, "", "") //nolint:errcheck // ends with Close
	return s, nil
}

// makeCerts creates the TLS certificate (ECDSA, for 127.0.0.1, ::1 and
// localhost; it is its own CA) and the RSA key that signs answers.
func (s *Server) makeCerts() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("taxservice: tls key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "posgate tax service simulator", Organization: []string{"posgate simulator"}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("taxservice: tls certificate: %w", err)
	}
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s.sigKey, err = rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("taxservice: signing key: %w", err)
	}
	stmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano() + 1),
		Subject:   pkix.Name{CommonName: "posgate tax service simulator (messages)"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	sder, err := x509.CreateCertificate(rand.Reader, stmpl, stmpl, &s.sigKey.PublicKey, s.sigKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("taxservice: signing certificate: %w", err)
	}
	if s.sigCert, err = x509.ParseCertificate(sder); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// URL is the service endpoint to set as fiscal.service_url.
func (s *Server) URL() string { return "https://" + s.ln.Addr().String() + "/fs-v1" }

// CAPEM is the certificate to trust (fiscal.service_ca_file).
func (s *Server) CAPEM() []byte { return s.caPEM }

// SigningCertificate signs the answers.
func (s *Server) SigningCertificate() *x509.Certificate { return s.sigCert }

// Close stops the server and ends any hang.
func (s *Server) Close() error {
	s.mu.Lock()
	select {
	case <-s.hangs:
	default:
		close(s.hangs)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	return nil
}

// Fail makes the next n requests fail with kind (FaultCode with code).
func (s *Server) Fail(kind, code string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{kind: kind, code: code})
	}
}

// Clear drops pending fault switches.
func (s *Server) Clear() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// FIC returns the FIC given for an IIC, if any.
func (s *Server) FIC(iic string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fics[strings.ToUpper(iic)]
	return f, ok
}

func (s *Server) nextFault() (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

// ServeHTTP answers one SOAP request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a SOAP envelope", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	rec := Request{Body: body}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
	}()
	if f, ok := s.nextFault(); ok {
		peek(body, &rec)
		rec.Fault = f.kind
		switch f.kind {
		case Fault503:
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		case FaultHang:
			select {
			case <-r.Context().Done():
			case <-s.hangs:
			case <-time.After(s.opts.MaxHang):
			}
			return
		case FaultDrop:
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case FaultBroken:
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			io.WriteString(w, `<SOAP-ENV:Envelope xmlns:SOAP-ENV="`+nsSOAP+`"><SOAP-ENV:Body><RegisterInvoiceResponse`)
			return
		case FaultCode:
			rec.Fault = f.code
			s.writeFault(w, f.code, "simulated fault "+f.code, "")
			return
		}
	}
	ans, code, msg, reqUUID := s.handle(body, &rec)
	if code != "" {
		rec.Fault = code
		s.writeFault(w, code, msg, reqUUID)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(ans)
}

// handle checks a request and answers it, or returns a fault code.
func (s *Server) handle(body []byte, rec *Request) (answer []byte, code, msg, reqUUID string) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil || doc.Root() == nil {
		return nil, "10", "the XML message could not be read", ""
	}
	env := doc.Root()
	if env == nil || env.Tag != "Envelope" || env.NamespaceURI() != nsSOAP {
		return nil, "22", "no SOAP envelope", ""
	}
	var req *etree.Element
	for _, b := range env.ChildElements() {
		if b.Tag == "Body" && b.NamespaceURI() == nsSOAP && len(b.ChildElements()) > 0 {
			req = b.ChildElements()[0]
		}
	}
	if req == nil || req.NamespaceURI() != nsFS {
		return nil, "22", "the request element is missing", ""
	}
	rec.Kind = req.Tag
	hdr := find(req, nsFS, "Header")
	if hdr == nil {
		return nil, "11", "Header is missing", ""
	}
	reqUUID = hdr.SelectAttrValue("UUID", "")
	rec.SubseqDelivType = hdr.SelectAttrValue("SubseqDelivType", "")
	cert, fc, fm := verify(req)
	if fc != "" {
		return nil, fc, fm, reqUUID
	}
	switch req.Tag {
	case "RegisterInvoiceRequest":
		return s.invoice(req, hdr, cert, rec, reqUUID)
	case "RegisterTCRRequest":
		t := find(req, nsFS, "TCR")
		if t == nil {
			return nil, "11", "TCR is missing", reqUUID
		}
		s.mu.Lock()
		s.tcrs++
		n := s.tcrs
		s.mu.Unlock()
		c := fmt.Sprintf("ts%03dsm%03d", n%1000, (n/1000)%1000)
		rec.Answer = c
		return s.answer("RegisterTCRResponse", "TCRCode", c, reqUUID), "", "", reqUUID
	case "RegisterCashDepositRequest":
		d := find(req, nsFS, "CashDeposit")
		if d == nil {
			return nil, "11", "CashDeposit is missing", reqUUID
		}
		op := d.SelectAttrValue("Operation", "")
		day := dayOf(d.SelectAttrValue("ChangeDateTime", ""))
		key := d.SelectAttrValue("TCRCode", "") + "|" + day
		amt := d.SelectAttrValue("CashAmt", "")
		if op == "WITHDRAW" && (amt == "0" || amt == "0.00") {
			return nil, "51", "the cash amount cannot be zero for WITHDRAW", reqUUID
		}
		s.mu.Lock()
		dup := op == "INITIAL" && s.deposits[key] && rec.SubseqDelivType == ""
		if op == "INITIAL" {
			s.deposits[key] = true
		}
		s.mu.Unlock()
		if dup {
			return nil, "56", "an INITIAL cash deposit is already registered for the day", reqUUID
		}
		c := newUUID()
		rec.Answer = c
		return s.answer("RegisterCashDepositResponse", "FCDC", c, reqUUID), "", "", reqUUID
	}
	return nil, "22", "unknown request " + req.Tag, reqUUID
}

// answer builds a signed response in the spec's shape (05, 01, 03
// examples): the service's namespace under the prefix ns2.
func (s *Server) answer(name, codeEl, code, reqUUID string) []byte {
	el := etree.NewElement("ns2:" + name)
	el.CreateAttr("xmlns:ns2", nsFS)
	el.CreateAttr("Id", "Response")
	el.CreateAttr("Version", "1")
	h := el.CreateElement("ns2:Header")
	h.CreateAttr("RequestUUID", reqUUID)
	h.CreateAttr("SendDateTime", s.opts.Now().Format("2006-01-02T15:04:05-07:00"))
	h.CreateAttr("UUID", newUUID())
	el.CreateElement("ns2:" + codeEl).SetText(code)
	ctx, err := dsig.NewSigningContext(s.sigKey, [][]byte{s.sigCert.Raw})
	if err != nil {
		panic(err)
	}
	ctx.Prefix = ""
	ctx.IdAttribute = "Id"
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		panic(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		panic(err)
	}
	return envelope(signed)
}

func envelope(body *etree.Element) []byte {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("SOAP-ENV:Envelope")
	env.CreateAttr("xmlns:SOAP-ENV", nsSOAP)
	env.CreateElement("SOAP-ENV:Header")
	env.CreateElement("SOAP-ENV:Body").AddChild(body)
	b, _ := doc.WriteToBytes()
	return b
}

// writeFault answers with a SOAP 1.1 fault in the spec's shape (3.8).
func (s *Server) writeFault(w http.ResponseWriter, code, msg, reqUUID string) {
	f := etree.NewElement("SOAP-ENV:Fault")
	fc := "SOAP-ENV:Client"
	if strings.HasPrefix(code, "9") && len(code) == 3 {
		fc = "SOAP-ENV:Server"
	}
	f.CreateElement("faultcode").SetText(fc)
	fs := f.CreateElement("faultstring")
	fs.CreateAttr("xml:lang", "en")
	fs.SetText(msg)
	d := f.CreateElement("detail")
	d.CreateElement("code").SetText(code)
	if reqUUID != "" {
		d.CreateElement("requestUUID").SetText(reqUUID)
	}
	d.CreateElement("responseUUID").SetText(newUUID())
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	w.Write(envelope(f))
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
