package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// Issue 11 part 7: a store written before custom header values were
// sealed is sealed when serve starts: the plaintext leaves the data
// directory's files, the API shows the value masked, and the receiver
// still gets the real value.
func TestServeSealsStoredHeaders(t *testing.T) {
	cfgPath := writeConfig(t, "store_id = \"shop-7\"\n[webhooks]\nallow_http = true\nallow_private = true\n")
	dataDir := filepath.Join(filepath.Dir(cfgPath), "data")
	admin := cliKey(t, cfgPath, "admin") // creates the store and the master key

	got := make(chan string, 16)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- r.Header.Get("Authorization") + " " + string(body)
	}))
	t.Cleanup(rcv.Close)

	// What an older build left: a plaintext value and no sealed copy.
	ctx := context.Background()
	const legacy = "Bearer from-an-older-build-2468"
	func() {
		db, err := store.Open(ctx, filepath.Join(dataDir, "posgate.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		mk, err := masterkey.LoadOrCreate(filepath.Join(dataDir, "master.key"))
		if err != nil {
			t.Fatal(err)
		}
		eps := webhook.New(db, mk, webhook.NewSender(webhook.SenderOptions{AllowHTTP: true, AllowPrivate: true}), webhook.Options{})
		c, _, err := eps.Create(ctx, webhook.NewParams{URL: rcv.URL})
		if err != nil {
			t.Fatal(err)
		}
		<-got // its ping
		if _, err := db.Write.Exec(`UPDATE webhook_endpoints SET headers = '{"Authorization":"`+legacy+`"}', headers_sealed = NULL WHERE id = ?`, c.ID); err != nil {
			t.Fatal(err)
		}
	}()

	d := startDaemon(t, cfgPath)
	req, _ := http.NewRequest("GET", d.url+"/v1/webhooks", nil)
	req.Header.Set("X-Api-Key", admin.ClientID+":"+admin.ClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []struct {
			ID      string            `json:"id"`
			Headers map[string]string `json:"headers"`
		} `json:"data"`
	}
	_ = json.NewDecoder(res.Body).Decode(&list)
	res.Body.Close()
	if len(list.Data) != 1 || list.Data[0].Headers["Authorization"] != "Bearer ****" {
		t.Fatalf("list shows %+v", list.Data)
	}
	req, _ = http.NewRequest("POST", d.url+"/v1/webhooks/"+list.Data[0].ID+"/test", nil)
	req.Header.Set("X-Api-Key", admin.ClientID+":"+admin.ClientSecret)
	req.Header.Set("Idempotency-Key", "t1")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 202 {
		t.Fatalf("test event: %v %v", res, err)
	}
	select {
	case h := <-got:
		if !strings.HasPrefix(h, legacy+" ") || !strings.Contains(h, `"store_id":"shop-7"`) {
			t.Fatalf("receiver got %q", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no test event within 10 s")
	}
	ents, _ := os.ReadDir(dataDir)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dataDir, e.Name()))
		if bytes.Contains(b, []byte("from-an-older-build-2468")) {
			t.Fatalf("%s still holds the plaintext value", e.Name())
		}
	}
}

func TestWebhookConfigKeys(t *testing.T) {
	for file, want := range map[string]string{
		"store_id = \"shop 7\"":                   "store_id",
		"store_id = \"-x\"":                       "store_id",
		"[webhooks]\ndisable_after = \"-1h\"":     "webhooks.disable_after",
		"[webhooks]\ndisable_after = \"9000h\"":   "webhooks.disable_after",
		"[webhooks]\ndisable_after = \"forever\"": "forever",
	} {
		path := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"serve", "--config", path, "--print-config"}, noenv, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: err=%v, want mention of %q", file, err, want)
		}
	}
	cfg := writeConfig(t, "store_id = \"shop-0412\"\n[webhooks]\ndisable_after = \"0s\"\n")
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"serve", "--config", cfg, "--print-config"}, noenv, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, `store_id = "shop-0412"`) || !strings.Contains(s, `disable_after = "0s"`) {
		t.Fatalf("print-config:\n%s", s)
	}
}
