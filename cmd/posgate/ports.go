package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/escpos"
)

// runPorts lists the serial ports and the USB printer-class devices with
// their USB ids, and the spec to put in a [[terminals]] or [[printers]]
// port key.
//
//	posgate ports
func runPorts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ports", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	ports, err := device.ListPorts()
	if err != nil {
		return fmt.Errorf("ports: %w", err)
	}
	ports = append(ports, escpos.ListUSBPrinters()...) // /dev/usb/lp*: no serial ports
	if len(ports) == 0 {
		fmt.Fprintln(stdout, "no serial ports or USB printers found (pseudo-terminals are never listed)")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tVID\tPID\tSERIAL\tPRODUCT\tSPEC")
	for _, p := range ports {
		vid, pid := p.VID, p.PID
		if !p.IsUSB {
			vid, pid = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Path, vid, pid, dash(p.SerialNumber), dash(p.Product), p.Spec())
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
