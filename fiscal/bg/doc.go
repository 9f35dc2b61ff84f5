// Package bg is the Bulgarian fiscal profile (fiscal.country = "bg"):
// the certified fiscal printer is the fiscalization. posgate signs
// nothing and needs no certificate; each sale carries a unique sale
// number (UNP, Naredba N-18: "XXXXXXXX-ZZZZ-NNNNNNN", the printer's
// fiscal memory serial, the operator code and a 7-digit sequence) that
// is given to the printer at receipt open, and fiscalization.completed
// fires when the fiscal receipt is closed, carrying the printer's receipt
// number, its fiscal memory serial, the UNP and the receipt's QR data.
//
// The printer is reached through SalePrinter, which this package owns;
// device/datecs implements it (UNP at receipt open, 74h for the QR data).
package bg
