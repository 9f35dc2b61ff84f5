// Package none is the fiscal profile of a shop with no fiscal duty
// (fiscal.country = "none"): invoices are numbered and stored, receipts
// print on any configured printer and the invoice and receipt events
// fire, but nothing is signed (no certificate is needed), nothing is
// registered and fiscalization.completed never fires.
package none
