package taxservice_test

import (
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/simulator/taxservice"
)

// The peer here is not posgate's client: the spec's own example request
// (3.7.5, 06_RegisterInvoiceRequest.xml) gets a fresh IIC computed by
// the steps of spec 4.3.2 and is signed by xmlsec1, and the simulator's
// answer is checked by xmlsec1 too.

func needXmlsec(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("xmlsec1")
	if err != nil {
		if os.Getenv("POSGATE_XMLTOOLS_REQUIRED") != "" {
			t.Fatal("xmlsec1 is required (apt-get install xmlsec1)")
		}
		t.Skip("xmlsec1 not installed")
	}
	return p
}

func attr(doc, name string) string {
	m := regexp.MustCompile(` ` + name + `="([^"]*)"`).FindStringSubmatch(doc)
	if m == nil {
		return ""
	}
	return m[1]
}

func setAttr(doc, name, v string) string {
	return regexp.MustCompile(` `+name+`="[^"]*"`).ReplaceAllLiteralString(doc, ` `+name+`="`+v+`"`)
}

// signedSpecRequest returns the spec's example, re-signed: IIC and
// IICSignature for key, the XML signature by xmlsec1.
func signedSpecRequest(t *testing.T, xmlsec string, key *rsa.PrivateKey, certPEM []byte) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/06_RegisterInvoiceRequest.xml")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	// Spec 4.3.2: TIN|IssueDateTime|InvOrdNum|BusinUnitCode|TCRCode|SoftCode|TotPrice.
	signed := strings.Join([]string{attr(doc, "IDNum"), attr(doc, "IssueDateTime"), attr(doc, "InvOrdNum"),
		attr(doc, "BusinUnitCode"), attr(doc, "TCRCode"), attr(doc, "SoftCode"), attr(doc, "TotPrice")}, "|")
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(sig)
	doc = setAttr(doc, "IICSignature", strings.ToUpper(hex.EncodeToString(sig)))
	doc = setAttr(doc, "IIC", strings.ToUpper(hex.EncodeToString(sum[:])))
	// The elided values become an xmlsec1 template.
	doc = regexp.MustCompile(`<DigestValue>[^<]*</DigestValue>`).ReplaceAllString(doc, "<DigestValue></DigestValue>")
	doc = regexp.MustCompile(`<SignatureValue>[^<]*</SignatureValue>`).ReplaceAllString(doc, "<SignatureValue></SignatureValue>")
	doc = regexp.MustCompile(`(?s)<X509Data>.*</X509Data>`).ReplaceAllString(doc, "<X509Data/>")
	dir := t.TempDir()
	keyPath, tmpl := filepath.Join(dir, "key.pem"), filepath.Join(dir, "tmpl.xml")
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(keyPath, append(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), certPEM...), 0o600)
	os.WriteFile(tmpl, []byte(doc), 0o600)
	out, err := exec.Command(xmlsec, "--sign", "--id-attr:Id", "RegisterInvoiceRequest", "--privkey-pem", keyPath+","+keyPath, tmpl).Output()
	if err != nil {
		t.Fatalf("xmlsec1 --sign: %v", err)
	}
	return out
}

func selfSigned(t *testing.T, key *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "peer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func post(t *testing.T, s *taxservice.Server, body []byte) (int, []byte) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := c.Post(s.URL(), "text/xml; charset=utf-8", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func TestSpecExampleSignedByXmlsec1(t *testing.T) {
	xmlsec := needXmlsec(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// The example was issued and sent at 2019-12-05T14:30:13+01:00.
	s, err := taxservice.Start(taxservice.Options{Now: func() time.Time { return time.Date(2019, 12, 5, 13, 30, 20, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := signedSpecRequest(t, xmlsec, key, selfSigned(t, key))

	code, ans := post(t, s, req)
	if code != 200 || !bytes.Contains(ans, []byte("RegisterInvoiceResponse")) {
		t.Fatalf("answer %d:\n%s", code, ans)
	}
	fic := regexp.MustCompile(`<ns2:FIC>([0-9a-f-]{36})</ns2:FIC>`).FindSubmatch(ans)
	if fic == nil {
		t.Fatalf("no FIC in %s", ans)
	}
	// The answer's signature (reference #Response) verifies with xmlsec1.
	p := filepath.Join(t.TempDir(), "ans.xml")
	os.WriteFile(p, ans, 0o600)
	if out, err := exec.Command(xmlsec, "--verify", "--id-attr:Id", "RegisterInvoiceResponse", "--insecure", "--enabled-key-data", "x509", p).CombinedOutput(); err != nil {
		t.Fatalf("xmlsec1 --verify of the answer: %v\n%s", err, out)
	}
	// The same IIC re-sent (SubseqDelivType is set in 06) gets the same FIC.
	if _, ans2 := post(t, s, req); !bytes.Contains(ans2, fic[1]) {
		t.Fatalf("re-sent: %s", ans2)
	}
	// A changed amount breaks the digest: a fault with a signature code.
	bad := bytes.Replace(req, []byte(`Amt="20.00"`), []byte(`Amt="21.00"`), 1)
	code, ans = post(t, s, bad)
	if code != 500 || !bytes.Contains(ans, []byte("<code>31</code>")) || !bytes.Contains(ans, []byte("faultcode")) {
		t.Fatalf("tampered: %d %s", code, ans)
	}
}

func TestFaultSwitches(t *testing.T) {
	s, err := taxservice.Start(taxservice.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Fail(taxservice.Fault503, "", 1)
	if code, _ := post(t, s, []byte("<x/>")); code != 503 {
		t.Fatalf("503 switch: %d", code)
	}
	s.Fail(taxservice.FaultCode, "58", 1)
	if code, b := post(t, s, []byte("<x/>")); code != 500 || !bytes.Contains(b, []byte("<code>58</code>")) {
		t.Fatalf("fault 58 switch: %d %s", code, b)
	}
	if code, b := post(t, s, []byte("not xml")); code != 500 || !bytes.Contains(b, []byte("<code>10</code>")) {
		t.Fatalf("not XML: %d %s", code, b)
	}
	if _, err := taxservice.Start(taxservice.Options{Addr: "192.0.2.1:443"}); err == nil {
		t.Fatal("a non-loopback address was accepted")
	}
}
