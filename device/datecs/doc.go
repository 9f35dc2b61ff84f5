// Package datecs drives Datecs fiscal printers: the X protocol of the
// FP-700X/DP-25X/DP-150X/FMP-350X family, and the older ISL protocol
// (FP-2000, DP-25, DP-150) as a width profile of the same framer.
//
// frame.go encodes and decodes frames and nothing else; params.go builds and
// splits the TAB-separated, escaped, CP1251 parameters; conn.go runs one
// exchange at a time on a device.Port, with the protocol's resend rules (NAK,
// SYN, the 500 ms host timeout, replay on a repeated SEQ); printer.go maps
// device.Printer onto the commands; receipt.go prints whole receipts once,
// asking the printer before it re-sends anything.
//
// It does not open or reconnect ports (package device does) and it does not
// keep print jobs (package fiscal does, through device.PrintLedger).
package datecs
