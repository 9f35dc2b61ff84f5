// Package bg is the Bulgarian fiscal profile (fiscal.country = "bg"):
// the certified fiscal printer is the fiscalization. posgate signs
// nothing and needs no certificate; each sale carries a unique sale
// number (UNP, Naredba N-18: "XXXXXXXX-ZZZZ-NNNNNNN", the printer's
// individual number, the operator code and a 7-digit sequence) that
// is given to the printer at receipt open, and fiscalization.completed
// fires when the fiscal receipt is closed, carrying the printer's receipt
// number, its fiscal memory serial, the UNP and the receipt's QR data.
//
// The printer is reached through SalePrinter, which this package owns; a
// small adapter in cmd/posgate puts *datecs.Device behind it (the UNP at
// receipt open, 30h; the QR data read back after close, 4Ah).
package bg
