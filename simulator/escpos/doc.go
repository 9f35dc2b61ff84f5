// Package escpos simulates an ESC/POS receipt printer (Epson TM-series
// command set) for tests and technicians: it parses the byte stream
// (parse.go, independent of the driver's encoders), answers the real-time
// status requests (DLE EOT) at once and the in-line ones (GS r) in turn,
// sends Automatic Status Back (GS a) on every change, takes paper and
// cover faults (holding what it has not printed, as a printer does, and
// going on when the fault is cleared), and renders each cut receipt as
// text and as a PNG with the QR code drawn from the decoded payload. It
// keeps a bounded journal of receipts.
//
// It does not simulate graphics, barcodes other than QR, page mode or
// the drawer: their commands are parsed and skipped.
package escpos
