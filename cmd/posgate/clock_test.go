package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/store/storetest"
)

// TestClockToleranceConfig: printers[].clock_tolerance defaults to 30s,
// "0s" turns the check off, a negative one is refused with its key.
func TestClockToleranceConfig(t *testing.T) {
	load := func(t *testing.T, extra string) (Config, error) {
		path := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(path, []byte("[[printers]]\nid = \"p1\"\nport = \"/dev/ttyS1\"\n"+extra), 0o600)
		return loadConfig(path, func(string) string { return "" })
	}
	for _, tc := range []struct {
		extra string
		want  time.Duration
	}{{"", 30 * time.Second}, {"clock_tolerance = \"0s\"\n", 0}, {"clock_tolerance = \"2m\"\n", 2 * time.Minute}} {
		cfg, err := load(t, tc.extra)
		if err != nil || cfg.Printers[0].ClockTolerance == nil || cfg.Printers[0].ClockTolerance.Duration != tc.want {
			t.Fatalf("%q: %+v, %v; want %v", tc.extra, cfg.Printers, err, tc.want)
		}
	}
	if _, err := load(t, "clock_tolerance = \"-1s\"\n"); err == nil || !strings.Contains(err.Error(), "printers[0].clock_tolerance") {
		t.Fatalf("negative tolerance: %v", err)
	}
}

// TestClockEvent: a clock that was set, or could not be, becomes a
// printer.clock_set event; one within tolerance does not.
func TestClockEvent(t *testing.T) {
	db := storetest.Open(t)
	hook := clockEvent(db, "p1", zerolog.New(zerolog.NewTestWriter(t)))
	info := device.PrinterInfo{Serial: "DT000600", FiscalMemory: "02517985"}
	now := time.Now()
	hook(context.Background(), info, datecs.ClockSync{Printer: now, Host: now}, nil)
	hook(context.Background(), info, datecs.ClockSync{Printer: now.Add(-time.Hour), Host: now, Drift: -time.Hour, Set: true}, nil)
	hook(context.Background(), info, datecs.ClockSync{Printer: now.Add(time.Hour), Host: now, Drift: time.Hour}, errors.New("refused"))
	rows, err := db.Read.Query(`SELECT data FROM outbox_events WHERE type = 'printer.clock_set' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		got = append(got, s)
	}
	if len(got) != 2 || !strings.Contains(got[0], `"drift_seconds":-3600`) || !strings.Contains(got[0], `"set":true`) ||
		!strings.Contains(got[1], `"error":"refused"`) || !strings.Contains(got[1], `"fiscal_memory":"02517985"`) {
		t.Fatalf("events %q", got)
	}
}
