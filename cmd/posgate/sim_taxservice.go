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

	"github.com/posgate/posgate/simulator/taxservice"
)

// simTaxStdin is where --control reads fault commands; tests replace it.
var simTaxStdin io.Reader = os.Stdin

// runSimTaxService serves the simulated Montenegrin fiscal service over
// HTTPS on loopback until ctx ends. It prints the URL to set as
// fiscal.service_url and the certificate to trust (fiscal.service_ca_file).
//
//	posgate sim taxservice [--addr 127.0.0.1:8443] [--ca-out FILE] [--no-deposit-check] [--control]
func runSimTaxService(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim taxservice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8443", "loopback address to serve HTTPS on")
	caOut := fs.String("ca-out", "", "write the certificate to trust to this file (else it is printed)")
	noDeposit := fs.Bool("no-deposit-check", false, "accept cash invoices of a day without an initial cash deposit (the real service refuses them: fault 58)")
	control := fs.Bool("control", false, "read fault commands from stdin (type help)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sim taxservice: unexpected argument %q", fs.Arg(0))
	}
	sim, err := taxservice.Start(taxservice.Options{Addr: *addr, RequireInitialDeposit: !*noDeposit})
	if err != nil {
		return fmt.Errorf("sim taxservice: %w", err)
	}
	defer sim.Close()
	out := &lockedWriter{w: stdout}
	fmt.Fprintf(out, "tax service simulator on %s\n", sim.URL())
	if *caOut != "" {
		if err := os.WriteFile(*caOut, sim.CAPEM(), 0o644); err != nil {
			return fmt.Errorf("sim taxservice: write CA: %w", err)
		}
		fmt.Fprintf(out, "trust %s (fiscal.service_ca_file)\n", *caOut)
	} else {
		fmt.Fprintf(out, "trust this certificate (save it, set fiscal.service_ca_file):\n%s", sim.CAPEM())
	}
	if *control {
		// The reader cannot be interrupted while it waits for a line; it
		// ends with stdin or with the process.
		go controlTaxService(ctx, simTaxStdin, sim, func(s string) { fmt.Fprintln(out, s) })
	}
	<-ctx.Done()
	return nil
}

const taxControlHelp = `commands: fault CODE [N] | 503 [N] | hang [N] | drop [N] | broken [N] | clear | help`

// controlTaxService reads fault switches, one per line.
func controlTaxService(ctx context.Context, r io.Reader, sim *taxservice.Server, reply func(string)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() && ctx.Err() == nil {
		f := strings.Fields(strings.ToLower(sc.Text()))
		if len(f) == 0 {
			continue
		}
		n := 1
		count := func(i int) bool {
			if len(f) > i {
				v, err := strconv.Atoi(f[i])
				if err != nil || v < 1 || v > 1000 {
					reply("count must be 1 to 1000")
					return false
				}
				n = v
			}
			return true
		}
		switch f[0] {
		case "fault":
			if len(f) < 2 || !count(2) {
				reply("fault CODE [N]")
				continue
			}
			sim.Fail(taxservice.FaultCode, f[1], n)
		case "503", "hang", "drop", "broken":
			if !count(1) {
				continue
			}
			sim.Fail(map[string]string{"503": taxservice.Fault503, "hang": taxservice.FaultHang,
				"drop": taxservice.FaultDrop, "broken": taxservice.FaultBroken}[f[0]], "", n)
		case "clear":
			sim.Clear()
		default:
			reply(taxControlHelp)
			continue
		}
		reply("ok")
	}
}
