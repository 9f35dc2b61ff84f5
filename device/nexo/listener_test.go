package nexo

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestListener(t *testing.T) {
	const poi = "V400m-324688179"
	roots, cert := terminalCert(t, "posgate.local")
	key, _ := DeriveKey("mySecretPassphrase", "Key1", 1)
	var mu sync.Mutex
	var got []Notification
	l, err := Listen("127.0.0.1:0", ListenerOptions{Cert: cert, Key: key, POIID: poi, Log: zerolog.Nop(),
		Notify: func(n Notification) { mu.Lock(); got = append(got, n); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() { cancel(); <-done }()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "posgate.local"}}}
	post := func(body []byte) int {
		resp, err := client.Post("https://"+l.Addr()+"/", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	notification := func(poiID, body string) []byte {
		pt := `{"SaleToPOIRequest":{"MessageHeader":{"MessageClass":"Event","MessageCategory":"Event","MessageType":"Notification","SaleID":"s","POIID":"` + poiID + `"},` + body + `}}`
		b, err := Seal(key, WrapRequest, nil, []byte(pt), nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if code := post(notification(poi, `"EventNotification":{"EventToNotify":"Shutdown","EventDetails":"newstate=IDLE&oldstate=START"}`)); code != 200 {
		t.Fatalf("event: %d", code)
	}
	if code := post(notification(poi, `"DisplayRequest":{"DisplayOutput":[{"Device":"CashierDisplay","OutputContent":{"OutputFormat":"Text","PredefinedContent":{"ReferenceID":"event=WAIT_FOR_PIN&TransactionID=x"}}}]}`)); code != 200 {
		t.Fatalf("display: %d", code)
	}
	// Refused: clear text, another terminal, another key.
	if code := post([]byte(`{"SaleToPOIRequest":{"MessageHeader":{"POIID":"` + poi + `"},"EventNotification":{"EventToNotify":"Shutdown"}}}`)); code != 400 {
		t.Fatalf("clear notification: %d", code)
	}
	if code := post(notification("V400m-999999999", `"EventNotification":{"EventToNotify":"Shutdown"}`)); code != 400 {
		t.Fatalf("other terminal: %d", code)
	}
	other, _ := DeriveKey("another", "Key1", 1)
	b, _ := Seal(other, WrapRequest, nil, []byte(`{"SaleToPOIRequest":{}}`), nil)
	if code := post(b); code != 400 {
		t.Fatalf("other key: %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].Kind != "event" || got[0].Event != "Shutdown" || got[1].Kind != "display" || got[1].Event != "WAIT_FOR_PIN" {
		t.Fatalf("notifications %+v", got)
	}

	// Fed to a client: Shutdown takes it offline until it is back.
	c, _ := New(Options{ID: "t", Addr: "tls://127.0.0.1:1", POIID: poi, Key: key, Trust: Trust{Roots: roots}})
	c.online.Store(true)
	c.Notify(got[0])
	if c.Online() {
		t.Fatal("online after Shutdown")
	}
	c.Notify(Notification{Kind: "event", Event: "Initialised"})
	if !c.Online() {
		t.Fatal("offline after Initialised")
	}
}
