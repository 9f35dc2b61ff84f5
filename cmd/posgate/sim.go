package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/simulator"
)

// simFlags are the flags both simulators take.
type simFlags struct {
	pty     *bool
	tcp     *string
	link    *string
	control *bool
	quiet   *bool
}

func addSimFlags(fs *flag.FlagSet, exampleTCP string) simFlags {
	return simFlags{
		pty:     fs.Bool("pty", false, "serve on a new pseudo-terminal (the default)"),
		tcp:     fs.String("tcp", "", "serve on this TCP address, e.g. "+exampleTCP),
		link:    fs.String("link", "", "with --pty: keep this symlink pointing at the pty (it changes after a dropped line)"),
		control: fs.Bool("control", false, "read fault commands from stdin (type help)"),
		quiet:   fs.Bool("quiet", false, "do not render what it prints"),
	}
}

// check refuses contradictory flags and stray arguments.
func (f simFlags) check(name string, fs *flag.FlagSet) error {
	if *f.pty && *f.tcp != "" {
		return fmt.Errorf("%s: --pty and --tcp exclude each other", name)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	return nil
}

// serveSim serves a simulator on TCP (with tcp) or on a new pty (with
// serial) until ctx ends, after telling out where: "<what> on <where>".
func serveSim(ctx context.Context, name, what string, f simFlags, serial, tcp simulator.Handler,
	log zerolog.Logger, out io.Writer) error {
	if *f.tcp != "" {
		srv, err := simulator.ServeTCP(ctx, *f.tcp, tcp, log)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer srv.Close()
		fmt.Fprintf(out, "%s on tcp://%s\n", what, srv.Addr())
		<-ctx.Done()
		return nil
	}
	srv, err := simulator.ServePTY(ctx, serial, simulator.PTYOptions{Link: *f.link, Log: log})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer srv.Close()
	fmt.Fprintf(out, "%s on %s\n", what, srv.Path())
	<-ctx.Done()
	return nil
}

// lockedWriter serializes what a simulator prints and control replies on
// one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
