package main

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/escpos"
)

func TestSimPrinterESCPOS(t *testing.T) {
	for name, args := range map[string][]string{
		"tcp": {"--tcp", "127.0.0.1:0"},
		"pty": {"--pty"},
	} {
		t.Run(name, func(t *testing.T) { testSimPrinterESCPOS(t, args) })
	}
}

// posgate sim printer --protocol escpos: the driver prints on it, the
// receipt shows on stdout with its decoded QR payload, a PNG is written,
// and the control commands take the paper out and put it back.
func testSimPrinterESCPOS(t *testing.T, args []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctl, ctlW := io.Pipe()
	old := simPrinterStdin
	simPrinterStdin = ctl
	t.Cleanup(func() { simPrinterStdin = old; ctlW.Close() })
	dir := t.TempDir()
	var stdout, stderr simOutput
	errc := make(chan error, 1)
	go func() {
		errc <- runSimPrinter(ctx, append([]string{"--protocol", "escpos", "--png-dir", dir, "--control"}, args...), &stdout, &stderr)
	}()
	addr := regexp.MustCompile(` on (\S+)\n`)
	var spec string
	for deadline := time.Now().Add(5 * time.Second); spec == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			spec = m[1]
		}
	}
	if spec == "" {
		cancel()
		t.Fatalf("simulator did not say where it serves: %q %q %v", stdout.String(), stderr.String(), <-errc)
	}
	port, err := escpos.OpenPort(ctx, spec, escpos.PortOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	pr := escpos.New(port, escpos.Options{})

	ctlW.Write([]byte("paper out\n"))
	waitOutput(t, &stdout, "ok\n")
	slip := device.Slip{ID: "s1", Lines: []device.SlipLine{{Text: "Kafa šoljica"}}, QR: "https://example.me/v?iic=1"}
	if _, err := pr.PrintSlip(ctx, slip); !errors.Is(err, device.ErrPaperOut) {
		t.Fatalf("PrintSlip with paper out = %v, want ErrPaperOut", err)
	}
	ctlW.Write([]byte("paper in\n"))
	waitOutput(t, &stdout, "ok\nok\n")
	if _, err := pr.PrintSlip(ctx, slip); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, &stdout, "png: ")
	out := stdout.String()
	for _, want := range []string{"Kafa šoljica", "[QR] https://example.me/v?iic=1"} {
		if !bytes.Contains([]byte(out), []byte(want)) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "receipt-0001.png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("receipt PNG: %v", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("runSimPrinter: %v", err)
	}
}

func waitOutput(t *testing.T, out *simOutput, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if bytes.Contains([]byte(out.String()), []byte(want)) {
			return
		}
	}
	t.Fatalf("output lacks %q:\n%s", want, out.String())
}
