package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	simnexo "github.com/posgate/posgate/simulator/nexo"
)

// simProtocol finds --protocol in args before they are parsed, since
// each protocol's simulator has its own flags.
func simProtocol(args []string) string {
	for i, a := range args {
		a = strings.TrimPrefix(a, "-")
		a = strings.TrimPrefix(a, "-")
		if v, ok := strings.CutPrefix(a, "protocol="); ok {
			return v
		}
		if a == "protocol" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return "zvt"
}

// runSimNexo serves a simulated nexo terminal (Adyen Terminal API, local)
// over TLS with a certificate chain it generates, and prints the root to
// trust.
//
//	posgate sim terminal --protocol nexo [--tcp ADDR] [--poi-id ID] [--key-id K] [--key-version N]
//	                     [--passphrase P] [--step D] [--slow D] [--delay D] [--wrong-key]
//	                     [--root-out FILE] [--control]
func runSimNexo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim terminal --protocol nexo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("protocol", "nexo", "nexo")
	tcp := fs.String("tcp", "127.0.0.1:8443", "serve TLS on this address")
	poiID := fs.String("poi-id", "V400m-324688179", "the terminal's POIID; its certificate is <poi-id>.test.terminal.adyen.com")
	keyID := fs.String("key-id", "Key1", "key identifier")
	keyVersion := fs.Int("key-version", 1, "key version")
	pass := fs.String("passphrase", "posgate-simulator", "passphrase of the encryption key (ASCII)")
	step := fs.Duration("step", 300*time.Millisecond, "card and PIN time of an ordinary sale")
	slow := fs.Duration("slow", 5*time.Second, "how long amounts ending in 55 take")
	delay := fs.Duration("delay", 0, "answer every payment this much later (the approval stands meanwhile)")
	wrongKey := fs.Bool("wrong-key", false, "refuse every message as if the sale system used another key")
	rootOut := fs.String("root-out", "", "also write the generated root certificate (PEM) to this file")
	control := fs.Bool("control", false, "read fault commands from stdin (type help)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sim terminal: unexpected argument %q", fs.Arg(0))
	}
	log := zerolog.New(stderr).With().Timestamp().Logger()
	sim, err := simnexo.New(simnexo.Options{POIID: *poiID, KeyID: *keyID, KeyVersion: *keyVersion, Passphrase: *pass,
		Step: *step, Slow: *slow, Delay: *delay, Log: log})
	if err != nil {
		return fmt.Errorf("sim terminal: %w", err)
	}
	sim.WrongKey(*wrongKey)
	if *rootOut != "" {
		if err := os.WriteFile(*rootOut, sim.RootPEM(), 0o644); err != nil {
			return fmt.Errorf("sim terminal: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv, err := sim.Serve(ctx, *tcp)
	if err != nil {
		return fmt.Errorf("sim terminal: %w", err)
	}
	defer srv.Close()
	out := &lockedWriter{w: stdout}
	fmt.Fprintf(out, "terminal simulator (nexo, POIID %s, key %s v%d) on tls://%s\n", *poiID, *keyID, *keyVersion, srv.Addr())
	fmt.Fprintf(out, "trust this root (root_ca_file):\n%s", sim.RootPEM())
	if *control {
		go controlNexo(ctx, simTerminalStdin, sim, out)
	}
	<-ctx.Done()
	return nil
}

const nexoControlHelp = `commands: drop | ignore-abort on|off | wrong-key on|off | journal | help
amounts (last two digits): 51 decline, 52 no result until abort, 53 customer cancels,
                           54 approves after abort, 55 slow, 56 approves then drops the answer,
                           57 approves half (Partial)`

// controlNexo applies fault commands read line by line from r.
func controlNexo(ctx context.Context, r io.Reader, sim *simnexo.Terminal, out io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() && ctx.Err() == nil {
		f := strings.Fields(strings.ToLower(sc.Text()))
		if len(f) == 0 {
			continue
		}
		on := len(f) < 2 || f[1] == "on"
		switch f[0] {
		case "drop":
			sim.DropNextAnswer()
			fmt.Fprintln(out, "ok: the next payment is processed and its answer dropped")
		case "ignore-abort":
			sim.IgnoreAbort(on)
			fmt.Fprintln(out, "ok: ignore abort", on)
		case "wrong-key":
			sim.WrongKey(on)
			fmt.Fprintln(out, "ok: wrong key", on)
		case "journal":
			for _, e := range sim.Journal() {
				fmt.Fprintf(out, "%s %-8s %d %s reversed=%v\n", e.POITxID, e.Kind, e.Amount, e.Currency, e.Reversed)
			}
		default:
			fmt.Fprintln(out, nexoControlHelp)
		}
	}
}
