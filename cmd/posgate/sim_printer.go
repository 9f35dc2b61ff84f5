package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/posgate/posgate/simulator/printer"
	"github.com/rs/zerolog"
)

// simPrinterStdin is where --control reads fault commands; tests replace it.
var simPrinterStdin io.Reader = os.Stdin

// runSimPrinter serves a simulated Datecs X fiscal printer on a pty or a
// TCP port until ctx is cancelled, and prints every document it prints;
// with --protocol escpos, an ESC/POS receipt printer (runSimESCPOS).
//
//	posgate sim printer [--protocol datecs-x] [--pty [--link PATH] | --tcp ADDR] [--model M] [--serial S]
//	                    [--fm N] [--report-delay D] [--vat-rates A=0,B=21,…] [--control] [--quiet]
func runSimPrinter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if protocolArg(args) == "escpos" {
		return runSimESCPOS(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("sim printer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	protocol := fs.String("protocol", "datecs-x", "printer protocol: datecs-x or escpos")
	sf := addSimFlags(fs, "127.0.0.1:4999")
	model := fs.String("model", "FP-700X", "model name in the device info (5Ah)")
	serial := fs.String("serial", "DT000600", "serial number in the device info")
	fm := fs.String("fm", "02517985", "fiscal memory number in the device info")
	reportDelay := fs.Duration("report-delay", time.Second, "how long X/Z reports keep the printer busy (SYN)")
	vatRates := fs.String("vat-rates", "", `VAT rates programmed in groups A…H answered to 32h, e.g. "A=0,B=21,C=7,D=20"; groups left out are disabled (default A=0,B=20,C=20,D=9,E…H=0)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := sf.check("sim printer", fs); err != nil {
		return err
	}
	if *protocol != "datecs-x" {
		return fmt.Errorf("sim printer: --protocol %q: want datecs-x or escpos", *protocol)
	}

	out := &lockedWriter{w: stdout} // documents and control replies share stdout
	opts := printer.Options{
		Model: *model, Serial: *serial, FiscalMemory: *fm, ReportDelay: *reportDelay,
		Log: zerolog.New(stderr).With().Timestamp().Str("component", "sim-printer").Logger(),
	}
	if *vatRates != "" {
		rates, err := printer.ParseVATRates(*vatRates)
		if err != nil {
			return fmt.Errorf("sim printer: --vat-rates: %w", err)
		}
		opts.VATRates = &rates
	}
	if !*sf.quiet {
		opts.OnDocument = func(d printer.Document) { fmt.Fprintln(out, d.Text) }
	}
	sim := printer.New(opts)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *sf.control {
		// The reader cannot be interrupted while it waits for a line on a
		// terminal; it ends with stdin or with the process.
		go controlPrinter(ctx, simPrinterStdin, sim, func(s string) { fmt.Fprintln(out, s) })
	}
	return serveSim(ctx, "sim printer", fmt.Sprintf("printer simulator (datecs-x %s %s)", *model, *serial), sf,
		sim.Handle, sim.Handle, opts.Log, out)
}

const controlHelp = `commands: paper out | paper in | paper after N | cover open | cover close |
          busy DURATION | garbage N | lose N | drop CMDHEX | restore | clock DURATION | counters | help`

// controlPrinter applies fault commands read line by line from r.
func controlPrinter(ctx context.Context, r io.Reader, sim *printer.Printer, reply func(string)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() && ctx.Err() == nil {
		f := strings.Fields(strings.ToLower(sc.Text()))
		if len(f) == 0 {
			continue
		}
		arg := ""
		if len(f) > 1 {
			arg = f[len(f)-1]
		}
		n, nErr := strconv.Atoi(arg)
		switch strings.Join(f[:min(len(f), 2)], " ") {
		case "paper out":
			sim.SetPaperOut(true)
		case "paper in":
			sim.SetPaperOut(false)
		case "paper after":
			if nErr != nil {
				reply("paper after N: N must be a number")
				continue
			}
			sim.PaperOutAfter(n)
		case "cover open":
			sim.SetCoverOpen(true)
		case "cover close", "cover closed":
			sim.SetCoverOpen(false)
		default:
			switch f[0] {
			case "busy":
				d, err := time.ParseDuration(arg)
				if err != nil {
					reply("busy DURATION, e.g. busy 3s")
					continue
				}
				sim.BusyFor(d)
			case "garbage", "lose":
				if nErr != nil {
					reply(f[0] + " N: N must be a number")
					continue
				}
				if f[0] == "garbage" {
					sim.Garbage(n)
				} else {
					sim.DropAnswers(n)
				}
			case "drop":
				c, err := strconv.ParseUint(strings.TrimSuffix(arg, "h"), 16, 16)
				if err != nil {
					reply("drop CMDHEX, e.g. drop 38")
					continue
				}
				sim.DropLineAfter(uint16(c))
			case "restore":
				sim.RestoreLine()
			case "clock":
				// clock -1h: the printer's clock drifts; posgate sets it
				// again on its next connection (printers[].clock_tolerance).
				d, err := time.ParseDuration(arg)
				if err != nil {
					reply("clock DURATION, e.g. clock -1h")
					continue
				}
				sim.ShiftClock(d)
				reply("ok, printer clock " + sim.Clock().Format(time.DateTime))
				continue
			case "counters":
				reply(fmt.Sprintf("%+v", sim.Counters()))
				continue
			default:
				reply(controlHelp)
				continue
			}
		}
		reply("ok")
	}
}
