// Package escpos drives ESC/POS receipt printers (the Epson TM-series
// command set, which most brands follow) over TCP (raw port 9100), serial
// lines and USB printer-class devices (/dev/usb/lp*).
//
// commands.go encodes single commands and nothing else, each with the
// section of Epson's ESC/POS command reference it follows; codepage.go
// picks the character code table that carries the Montenegrin letters;
// status.go decodes real-time status (DLE EOT), Automatic Status Back
// (GS a) and the paper sensor answer (GS r); layout.go turns a
// device.Slip or a device.Receipt into the bytes of one job; printer.go
// prints a job once per document on a device.Port; device.go puts a
// printer behind a device.Link and polls its status for device.degraded
// events; open.go resolves /dev/usb/lp* and usb:VID:PID specs.
//
// It does not keep print jobs (package fiscal does, through
// device.PrintLedger) and does not decide what a receipt says (the
// country profile does, through device.Slip or device.Receipt).
package escpos
