// Package device owns the link between posgate and its peripherals: the
// Terminal contract that payment-terminal drivers implement, the events a
// terminal streams while it holds master rights, the Printer contract of
// fiscal-printer drivers with its typed errors and the print-once ledger
// (PrintLedger, ReceiptPrinter), the transports (serial
// through go.bug.st/serial, TCP, and usb:VID:PID[:serial] resolved through
// the enumerator), the Link that owns one port in one goroutine and
// reconnects after an unplug, connection-state notifications, and a ring of
// recently traced frames per device.
//
// It does not speak any wire protocol: framing and commands live in the
// driver packages (device/zvt, device/datecs), which run their exchanges on
// the Port a Link hands them, and device/nexo, which speaks HTTPS to its
// terminal without a Link.
package device
