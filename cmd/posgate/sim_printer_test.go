package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
)

// simOutput is a bytes.Buffer safe for one writer and one reader.
type simOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *simOutput) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *simOutput) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSimPrinter(t *testing.T) {
	for name, args := range map[string][]string{
		"tcp": {"--tcp", "127.0.0.1:0"},
		"pty": {"--pty"},
	} {
		t.Run(name, func(t *testing.T) { testSimPrinter(t, args) })
	}
}

// TestSimPrinterVATRates: --vat-rates programs the groups the driver
// reads (32h) on connect; Albania's 20 % is a rate like any other.
func TestSimPrinterVATRates(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr simOutput
	errc := make(chan error, 1)
	go func() {
		errc <- runSimPrinter(ctx, []string{"--tcp", "127.0.0.1:0", "--vat-rates", "A=0,B=21,C=7,D=20"}, &stdout, &stderr)
	}()
	addr := regexp.MustCompile(` on (\S+)\n`)
	var spec string
	for deadline := time.Now().Add(5 * time.Second); spec == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			spec = m[1]
		}
	}
	if spec == "" {
		t.Fatalf("no port printed; stdout %q stderr %q", stdout.String(), stderr.String())
	}
	p, err := datecs.Open(ctx, spec, datecs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	off := int64(datecs.RateDisabled)
	if got, want := p.Rates(), (datecs.VATRates{0, 2100, 700, 2000, off, off, off, off}); got != want {
		t.Fatalf("Rates=%v, want %v", got, want)
	}
	p.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("runSimPrinter: %v", err)
	}
	var out, errb simOutput
	if err := runSimPrinter(context.Background(), []string{"--tcp", "127.0.0.1:0", "--vat-rates", "A=21,Z=1"}, &out, &errb); err == nil ||
		!strings.Contains(err.Error(), "--vat-rates") {
		t.Fatalf("bad --vat-rates: %v", err)
	}
}

func testSimPrinter(t *testing.T, args []string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr simOutput
	errc := make(chan error, 1)
	go func() {
		errc <- runSimPrinter(ctx, append(args, "--report-delay", "100ms"), &stdout, &stderr)
	}()

	addr := regexp.MustCompile(` on (\S+)\n`)
	var spec string
	for deadline := time.Now().Add(5 * time.Second); spec == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			spec = m[1]
		}
	}
	if spec == "" {
		t.Fatalf("no port printed; stdout %q stderr %q", stdout.String(), stderr.String())
	}
	p, err := datecs.Open(ctx, spec, datecs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.PrintReceipt(ctx, device.Receipt{ID: "cli-1", Lines: []device.Line{
		{Item: device.Item{Name: "Coffee", VATGroup: 2, UnitPrice: 250}}}})
	if err != nil || res.Amount != 250 {
		t.Fatalf("PrintReceipt=%+v, %v", res, err)
	}
	if _, err := p.ZReport(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("runSimPrinter: %v", err)
	}
	for _, s := range []string{"Coffee", "FISCAL RECEIPT No 0000001", "Z REPORT No 0001"} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
		}
	}
}

func TestControlPrinter(t *testing.T) {
	sim := printer.New(printer.Options{})
	var replies []string
	in := "paper out\ncover open\nbusy 1x\ncounters\nnonsense\n"
	controlPrinter(context.Background(), strings.NewReader(in), sim, func(s string) { replies = append(replies, s) })
	if len(replies) != 5 || replies[0] != "ok" || replies[1] != "ok" || !strings.HasPrefix(replies[2], "busy") ||
		!strings.Contains(replies[3], "Fiscal:0") || !strings.HasPrefix(replies[4], "commands:") {
		t.Fatalf("replies=%q", replies)
	}
}

func TestControlPrinterClock(t *testing.T) {
	sim := printer.New(printer.Options{})
	var replies []string
	controlPrinter(context.Background(), strings.NewReader("clock -1h\nclock soon\n"), sim, func(s string) { replies = append(replies, s) })
	if drift := time.Since(sim.Clock()); len(replies) != 2 || !strings.HasPrefix(replies[0], "ok, printer clock") ||
		!strings.HasPrefix(replies[1], "clock DURATION") || drift < 59*time.Minute || drift > 61*time.Minute {
		t.Fatalf("replies=%q, printer %v behind", replies, drift)
	}
}
