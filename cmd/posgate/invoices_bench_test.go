//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkDaemonInvoices measures the real binary under `serve
// --simulate` (simulated terminal and printer on ptys, every invoice
// printed) as a till uses it:
//   - idle_rss_MiB: resident memory a second after start with the
//     simulators, the binary read from disk (DESIGN §8 budget: 20 MiB,
//     for the daemon alone: BenchmarkDaemon), and its anonymous and
//     file-backed parts (idle_anon_MiB, idle_file_MiB);
//   - rss_MiB (anon_MiB its anonymous part): resident memory after
//     POSGATE_BENCH_INVOICES (default 100,000) invoices through the API from
//     16 concurrent clients, and peak_rss_MiB meanwhile (budget 60 MiB);
//   - invoices/s and p99-ms of those requests (HTTP, idempotency,
//     signing, one commit each).
//
// POSGATE_BENCH_INVOICES sets the count (a quicker run).
func BenchmarkDaemonInvoices(b *testing.B) {
	total := 100_000
	if v, err := strconv.Atoi(os.Getenv("POSGATE_BENCH_INVOICES")); err == nil && v > 0 {
		total = v
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "posgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "posgate.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("listen = \"127.0.0.1:0\"\ndata_dir = %q\n[log]\nlevel = \"warn\"\n%s",
		filepath.Join(dir, "data"), fiscalConfig)), 0o600); err != nil {
		b.Fatal(err)
	}
	// One API key per till: a key keeps at most 10,000 idempotent answers
	// a day (idempotency.DefaultMaxLive).
	const clients = 16
	imp := exec.Command(bin, "certs", "import", "--config", cfg, "--p12", "../../fiscal/testdata/openssl3-aes.p12", "--json")
	imp.Env = append(os.Environ(), "POSGATE_CERT_PASSWORD=posgate-test")
	out, err := imp.Output()
	if err != nil {
		b.Fatalf("certs import: %v", err)
	}
	var cert struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(out, &cert); err != nil || cert.ID == "" {
		b.Fatalf("certs import --json printed %q: %v", out, err)
	}
	keys := make([]createdKey, clients)
	for i := range keys {
		out, err := exec.Command(bin, "keys", "create", "--config", cfg, "--label", fmt.Sprint("till ", i), "--role", "pos",
			"--certificate", cert.ID, "--json").Output()
		if err != nil {
			b.Fatalf("keys create: %v", err)
		}
		if err := json.Unmarshal(out, &keys[i]); err != nil {
			b.Fatal(err)
		}
	}

	b.ResetTimer()
	for range b.N {
		dropFromPageCache(b, bin) // started from disk, as BenchmarkDaemon
		d, base, _ := startBinaryAt(b, bin, cfg, "--simulate")
		time.Sleep(time.Second)
		idle := rssMiB(b, d.Process.Pid)
		idleAnon, idleFile := rssParts(b, d.Process.Pid)

		var (
			next    atomic.Int64
			peak    atomic.Int64 // KiB
			mu      sync.Mutex
			lat     []time.Duration
			wg      sync.WaitGroup
			failed  atomic.Int64
			stopped = make(chan struct{})
		)
		go func() {
			for {
				select {
				case <-stopped:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if r := int64(rssMiB(b, d.Process.Pid) * 1024); r > peak.Load() {
					peak.Store(r)
				}
			}
		}()
		tr := &http.Transport{MaxIdleConnsPerHost: clients}
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		body := `{"type":"sale","items":[{"name":"Espresso","quantity":2,"unit_price":150,"vat_rate":21}],"payments":[{"type":"cash","amount":300}]}`
		start := time.Now()
		for _, key := range keys {
			wg.Go(func() {
				var mine []time.Duration
				for {
					i := next.Add(1)
					if i > int64(total) || failed.Load() > 0 {
						break
					}
					req, _ := http.NewRequest("POST", base+"/v1/invoices", strings.NewReader(body))
					req.Header.Set("X-Api-Key", key.ClientID+":"+key.ClientSecret)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Idempotency-Key", "bench-"+strconv.FormatInt(i, 10))
					t0 := time.Now()
					res, err := c.Do(req)
					if err != nil {
						b.Error(err)
						failed.Add(1)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusCreated {
						b.Errorf("invoice %d: status %d", i, res.StatusCode)
						failed.Add(1)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
		}
		wg.Wait()
		el := time.Since(start)
		tr.CloseIdleConnections()
		// Let the printer worker and the collector settle a moment.
		time.Sleep(2 * time.Second)
		close(stopped)
		after := rssMiB(b, d.Process.Pid)
		afterAnon, _ := rssParts(b, d.Process.Pid)
		stopBinary(b, d)
		if len(lat) == 0 {
			b.Fatal("no invoice made")
		}
		slices.Sort(lat)
		b.ReportMetric(idle, "idle_rss_MiB")
		b.ReportMetric(idleAnon, "idle_anon_MiB")
		b.ReportMetric(idleFile, "idle_file_MiB")
		b.ReportMetric(after, "rss_MiB")
		b.ReportMetric(afterAnon, "anon_MiB")
		b.ReportMetric(max(float64(peak.Load())/1024, after), "peak_rss_MiB")
		b.ReportMetric(float64(len(lat))/el.Seconds(), "invoices/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
