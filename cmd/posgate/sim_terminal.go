package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/rs/zerolog"
)

// simTerminalStdin is where --control reads fault commands; tests replace it.
var simTerminalStdin io.Reader = os.Stdin

// runSimTerminal serves a simulated ZVT payment terminal on a pty or a TCP
// port until ctx is cancelled, and renders every receipt it prints.
//
//	posgate sim terminal [--pty [--link PATH] | --tcp ADDR [--tls-cert F --tls-key F]]
//	                     [--password P] [--tid ID] [--profile NAME]
//	                     [--step D] [--slow D] [--control] [--quiet]
func runSimTerminal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if simProtocol(args) == "nexo" {
		return runSimNexo(ctx, args, stdout, stderr)
	}
	fs := flag.NewFlagSet("sim terminal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sf := addSimFlags(fs, "127.0.0.1:20007")
	password := fs.String("password", "000000", "terminal password the ECR must send")
	tid := fs.String("tid", "52500042", "terminal id (8 digits)")
	step := fs.Duration("step", 300*time.Millisecond, "gap between intermediate statuses")
	slow := fs.Duration("slow", 5*time.Second, "how long amounts ending in 55 keep the terminal busy")
	protocol := fs.String("protocol", "zvt", "zvt, or nexo (Adyen Terminal API over TLS)")
	profile := fs.String("profile", "", "behave like firmware with known deviations: "+strings.Join(terminal.Profiles(), ", "))
	tlsCert := fs.String("tls-cert", "", "with --tcp: serve TLS with this PEM certificate (a tls:// terminal)")
	tlsKey := fs.String("tls-key", "", "with --tls-cert: its PEM private key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *protocol != "zvt" {
		return fmt.Errorf("sim terminal: --protocol %q: want zvt or nexo", *protocol)
	}
	if err := sf.check("sim terminal", fs); err != nil {
		return err
	}
	if err := terminal.CheckProfile(*profile); err != nil {
		return fmt.Errorf("sim terminal: --profile: %w", err)
	}
	if (*tlsCert != "") != (*tlsKey != "") || (*tlsCert != "" && *sf.tcp == "") {
		return fmt.Errorf("sim terminal: --tls-cert and --tls-key go together, with --tcp")
	}

	out := &lockedWriter{w: stdout}
	opts := terminal.Options{
		Password: *password, TerminalID: *tid, Step: *step, Slow: *slow, Profile: *profile,
		Log: zerolog.New(stderr).With().Timestamp().Logger(),
	}
	if !*sf.quiet {
		opts.Receipts = out
	}
	sim := terminal.New(opts)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *sf.control {
		// The reader cannot be interrupted while it waits for a line on a
		// terminal; it ends with stdin or with the process.
		go controlTerminal(ctx, simTerminalStdin, sim, out)
	}

	if *tlsCert != "" {
		return serveTerminalTLS(ctx, *sf.tcp, *tlsCert, *tlsKey, *tid, sim, opts.Log, out)
	}
	return serveSim(ctx, "sim terminal", fmt.Sprintf("terminal simulator (zvt, tid %s)", *tid), sf,
		sim.ServeSerial, sim.ServeTCP, opts.Log, out)
}

const terminalControlHelp = `commands: nak | garbage | drop | ignore-abort on|off | journal | help
amounts (last two digits): 51 decline, 52 no result until abort, 53 customer cancels,
                           54 approves after abort, 55 slow; anything else approves`

// controlTerminal applies fault commands read line by line from r.
func controlTerminal(ctx context.Context, r io.Reader, sim *terminal.Simulator, out io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() && ctx.Err() == nil {
		f := strings.Fields(strings.ToLower(sc.Text()))
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "nak":
			sim.NAKNextFrame()
			fmt.Fprintln(out, "ok: the next frame from the ECR gets a NAK")
		case "garbage":
			sim.GarbageNextFrame()
			fmt.Fprintln(out, "ok: the next frame to the ECR carries garbage")
		case "drop":
			sim.DropLineNextTransaction()
			fmt.Fprintln(out, "ok: the line drops in the middle of the next payment")
		case "ignore-abort":
			on := len(f) < 2 || f[1] == "on"
			sim.IgnoreAbort(on)
			fmt.Fprintln(out, "ok: ignore abort", on)
		case "journal":
			for _, e := range sim.Journal() {
				fmt.Fprintf(out, "receipt %04d trace %06d %-8s %d.%02d approved=%v reversed=%v settled=%v\n",
					e.ReceiptNo, e.Trace, e.Kind, e.Amount/100, e.Amount%100, e.Approved, e.Reversed, e.Settled)
			}
		default:
			fmt.Fprintln(out, terminalControlHelp)
		}
	}
}

// serveTerminalTLS serves the simulator on addr over TLS until ctx ends.
func serveTerminalTLS(ctx context.Context, addr, certFile, keyFile, tid string, sim *terminal.Simulator,
	log zerolog.Logger, out io.Writer) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("sim terminal: load tls key pair: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("sim terminal: %w", err)
	}
	srv := simulator.ServeListener(ctx, tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert},
		MinVersion: tls.VersionTLS12}), sim.ServeTCP, log)
	defer srv.Close()
	fmt.Fprintf(out, "terminal simulator (zvt, tid %s) on tls://%s\n", tid, srv.Addr())
	<-ctx.Done()
	return nil
}
