// Package printer simulates a Datecs X fiscal printer (FP-700X family) on
// the printer side of the wire: the receipt state machine (open → sales →
// subtotal → payments → comments → close; cancel only before the first
// payment), storno and non-fiscal receipts, totals per VAT group, slip,
// fiscal and Z counters, X/Z reports, cash in/out, the status bytes, SYN
// while busy, replay of the last answer on a repeated SEQ and NAK on a bad
// frame. Fault switches (paper out, cover open, busy, line noise, lost
// answers, a dropped line) drive the failure paths of the driver.
//
// Every finished document is rendered as text and kept in a bounded
// journal (Options.Journal, the newest) that tests read in-process
// (Journal, Receipts, Counters). Serve runs the
// printer on any io.ReadWriter; Handle plugs it into package simulator's
// pty and TCP servers, and ServeListener serves a listener the caller
// holds. It reuses the frame codec of device/datecs and does not implement
// the old ISL command set.
package printer
