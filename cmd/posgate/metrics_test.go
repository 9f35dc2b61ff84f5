//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// scrape reads /metrics into name{labels} → value.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

var promName = regexp.MustCompile(`^[a-z_:][a-z0-9_:]*(\{.*\})?$`)

// TestShopMetrics: the names a shop's monitoring relies on are on
// /metrics, follow Prometheus' conventions, and move with a sale, a
// decline, a printed invoice, a delivered webhook and a device coming
// online. The default metric set is shared by the tests of this process,
// so the test compares before and after.
func TestShopMetrics(t *testing.T) {
	var hits atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hits.Add(1)
	}))
	defer receiver.Close()
	cfg := writeConfig(t, fiscalConfig+"\n[webhooks]\nallow_http = true\nallow_private = true\n")
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg, "--dev", "--simulate"}, noenv, stdout, io.Discard)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := listenLine.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
	}
	key := regexp.MustCompile(`X-Api-Key: (\S+)`).FindStringSubmatch(stdout.String())
	if base == "" || key == nil {
		t.Fatalf("no daemon:\n%s", stdout.String())
	}
	var lastBody string
	call := func(method, path, body, idem string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("X-Api-Key", key[1])
		req.Header.Set("Content-Type", "application/json")
		if idem != "" {
			req.Header.Set("Idempotency-Key", idem)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		lastBody = string(b)
		return res.StatusCode
	}
	waitOnline(t, base)
	start := time.Now()
	before := scrape(t, base)
	for name := range before {
		if strings.HasPrefix(name, "posgate_") && !promName.MatchString(name) {
			t.Errorf("not a Prometheus name: %s", name)
		}
	}
	for _, name := range []string{
		`posgate_payments_total{outcome="completed"}`, `posgate_payments_total{outcome="failed"}`,
		`posgate_print_jobs_total{outcome="printed"}`, `posgate_webhook_delivery_attempts_total{class="ok"}`,
		`posgate_device_state_changes_total{device="t1",state="online"}`, `posgate_webhook_deliveries_dead`,
	} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if st := call("POST", "/v1/webhooks", `{"url":"`+receiver.URL+`"}`, "m-hook"); st != 201 {
		t.Fatalf("webhook: %d", st)
	}
	for i, amount := range []int{1234, 1251} { // …51 is declined by the simulator
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			st := call("POST", "/v1/payments", fmt.Sprintf(`{"type":"sale","terminal_id":"t1","amount":%d,"currency":"EUR"}`, amount), fmt.Sprintf("m-pay-%d", i))
			if st == 201 || time.Now().After(deadline) {
				break
			}
		}
		// Wait for the end before the next (one payment per terminal).
		id := regexp.MustCompile(`"id":"(pay_[\w-]+)"`).FindStringSubmatch(lastBody)
		if id == nil {
			t.Fatalf("payment: %s", lastBody)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			call("GET", "/v1/payments/"+id[1]+"?wait=10s", "", "")
			if !strings.Contains(lastBody, `"status":"pending"`) && !strings.Contains(lastBody, `"status":"in_progress"`) {
				break
			}
		}
	}
	if st := call("POST", "/v1/invoices", `{"type":"sale","items":[{"name":"Espresso","quantity":1,"unit_price":150,"vat_rate":21}],"payments":[{"type":"cash","amount":150}]}`, "m-inv"); st != 201 {
		t.Fatalf("invoice: %d", st)
	}
	want := map[string]float64{
		`posgate_payments_total{outcome="completed"}`:         1,
		`posgate_payments_total{outcome="failed"}`:            1,
		`posgate_print_jobs_total{outcome="printed"}`:         1,
		`posgate_webhook_delivery_attempts_total{class="ok"}`: 1,
		`posgate_invoices_issued_total`:                       1,
	}
	t.Logf("actions took %s", time.Since(start))
	var after map[string]float64
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		after = scrape(t, base)
		ok := true
		for name, d := range want {
			if after[name]-before[name] < d {
				ok = false
			}
		}
		if ok {
			t.Logf("moved after %s", time.Since(start))
			return
		}
	}
	for name, d := range want {
		if after[name]-before[name] < d {
			t.Errorf("%s moved %v, want at least %v", name, after[name]-before[name], d)
		}
	}
}
