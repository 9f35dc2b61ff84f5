// Command posgate is the payment-and-fiscal device gateway daemon.
//
// main only calls run, which takes the OS as parameters so tests can call
// it; serve.go is the wiring diagram of the daemon.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	// Time zones are compiled in: a POS box may lack /usr/share/zoneinfo,
	// and invoice numbering depends on the country's calendar year.
	_ "time/tzdata"
)

// version is set with -ldflags "-X main.version=…" by the Makefile.
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "posgate:", err)
		}
		os.Exit(1)
	}
}

const usage = `posgate: payment-terminal and fiscal-printer gateway

Usage:
  posgate serve  [--config FILE] [--dev] [--simulate] [--print-config]
  posgate keys   create --label L --role admin|pos [--certificate ID] [--json]
  posgate keys   list [--json]
  posgate keys   revoke ID
  posgate sim    terminal|printer [--pty | --tcp ADDR]
  posgate sim    printer --protocol escpos [--pty | --tcp ADDR] [--png-dir DIR]
  posgate sim    terminal --protocol nexo [--tcp ADDR]
  posgate nexo   seal-passphrase --terminal ID   (reads the passphrase on stdin)
  posgate sim    taxservice [--addr 127.0.0.1:8443] [--ca-out FILE] [--control]
  posgate fiscal register-tcr --internal-id ID --certificate CERT_ID
  posgate certs  import|list|show|deactivate …
  posgate backup [--out FILE]
  posgate restore [--force] FILE
  posgate ports
  posgate doctor [--json]
  posgate version

Every command takes --config FILE (or $POSGATE_CONFIG); see README.md.
`

// run is posgate's whole life: parse the subcommand, do it, return. The
// first SIGINT/SIGTERM cancels ctx so everything shuts down in order; once
// it has, the signal handlers are gone and a second signal kills at once.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, getenv, stdout, stderr)
	case "doctor":
		return runDoctor(ctx, rest, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "posgate", version)
		return nil
	case "certs":
		return runCerts(ctx, rest, getenv, stdout, stderr)
	case "sim":
		switch {
		case len(rest) > 0 && rest[0] == "terminal":
			return runSimTerminal(ctx, rest[1:], stdout, stderr)
		case len(rest) > 0 && rest[0] == "printer":
			return runSimPrinter(ctx, rest[1:], stdout, stderr)
		case len(rest) > 0 && rest[0] == "taxservice":
			return runSimTaxService(ctx, rest[1:], stdout, stderr)
		}
		fmt.Fprint(stderr, usage)
		return errors.New("sim: want terminal, printer or taxservice")
	case "fiscal":
		return runFiscal(ctx, rest, getenv, stdout, stderr)
	case "ports":
		return runPorts(ctx, rest, stdout, stderr)
	case "backup":
		return runBackup(ctx, rest, getenv, stdout, stderr)
	case "restore":
		return runRestore(ctx, rest, getenv, stdout, stderr)
	case "nexo":
		return runNexo(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
