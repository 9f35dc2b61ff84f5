package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	simescpos "github.com/posgate/posgate/simulator/escpos"
)

// protocolArg returns the value of --protocol in args, if given.
func protocolArg(args []string) string {
	for i, a := range args {
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if v, ok := strings.CutPrefix(a, "protocol="); ok {
			return v
		}
		if a == "protocol" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// runSimESCPOS serves a simulated ESC/POS receipt printer on a pty or a TCP
// port until ctx is cancelled. Every cut receipt is printed as text and
// written as a PNG (with the QR code drawn from its decoded payload).
//
//	posgate sim printer --protocol escpos [--pty [--link PATH] | --tcp ADDR]
//	                    [--width N] [--png-dir DIR] [--journal N] [--control] [--quiet]
func runSimESCPOS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim printer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("protocol", "escpos", "printer protocol: datecs-x or escpos")
	sf := addSimFlags(fs, "127.0.0.1:9100")
	width := fs.Int("width", 42, "characters per line (42 on 80 mm paper, 32 on 58 mm)")
	pngDir := fs.String("png-dir", "", "write each receipt as a PNG into this `directory` (default: a new temporary one)")
	journal := fs.Int("journal", 64, "receipts kept in memory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := sf.check("sim printer", fs); err != nil {
		return err
	}
	if *width < 16 || *width > 96 || *journal < 1 {
		return fmt.Errorf("sim printer: --width must be 16 to 96 and --journal at least 1")
	}
	out := &lockedWriter{w: stdout}
	log := zerolog.New(stderr).With().Timestamp().Str("component", "sim-printer").Logger()
	opts := simescpos.Options{Width: *width, Journal: *journal, Log: log}
	if !*sf.quiet {
		if *pngDir == "" {
			d, err := os.MkdirTemp("", "posgate-escpos-")
			if err != nil {
				return fmt.Errorf("sim printer: %w", err)
			}
			*pngDir = d
		} else if err := os.MkdirAll(*pngDir, 0o755); err != nil {
			return fmt.Errorf("sim printer: %w", err)
		}
		opts.OnReceipt = func(r simescpos.Receipt) {
			path := filepath.Join(*pngDir, fmt.Sprintf("receipt-%04d.png", r.Seq))
			b, err := r.PNG()
			if err == nil {
				err = os.WriteFile(path, b, 0o644)
			}
			if err != nil {
				path = "not written: " + err.Error()
			}
			fmt.Fprintf(out, "%spng: %s\n", r.Text(), path)
		}
	}
	sim := simescpos.New(opts)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *sf.control {
		// The reader cannot be interrupted while it waits for a line on a
		// terminal; it ends with stdin or with the process.
		go controlESCPOS(ctx, simPrinterStdin, sim, func(s string) { fmt.Fprintln(out, s) })
	}
	what := fmt.Sprintf("printer simulator (escpos, %d columns)", *width)
	if !*sf.quiet {
		what += ", PNGs in " + *pngDir + ","
	}
	return serveSim(ctx, "sim printer", what, sf, sim.Handle, sim.Handle, log, out)
}

const controlHelpESCPOS = `commands: paper out | paper in | paper after N | paper near | paper full |
          cover open | cover close | counters | help`

// controlESCPOS applies fault commands read line by line from r.
func controlESCPOS(ctx context.Context, r io.Reader, sim *simescpos.Printer, reply func(string)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() && ctx.Err() == nil {
		f := strings.Fields(strings.ToLower(sc.Text()))
		if len(f) == 0 {
			continue
		}
		switch strings.Join(f[:min(len(f), 2)], " ") {
		case "paper out":
			sim.SetPaperOut(true)
		case "paper in":
			sim.SetPaperOut(false)
		case "paper after":
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil || len(f) != 3 {
				reply("paper after N: N must be a number")
				continue
			}
			sim.PaperOutAfter(n)
		case "paper near":
			sim.SetPaperNearEnd(true)
		case "paper full":
			sim.SetPaperNearEnd(false)
		case "cover open":
			sim.SetCoverOpen(true)
		case "cover close", "cover closed":
			sim.SetCoverOpen(false)
		case "counters":
			reply(fmt.Sprintf("%+v", sim.Counters()))
			continue
		default:
			reply(controlHelpESCPOS)
			continue
		}
		reply("ok")
	}
}
