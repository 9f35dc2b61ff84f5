// Package terminal is a ZVT payment-terminal simulator: the PT side of
// device/zvt, served by package simulator over a pty or TCP. It registers
// an ECR, holds master rights while it streams intermediate status,
// Status-Information and receipts, keeps a journal of its transactions
// with receipt numbers (so Repeat Receipt and Reversal work), settles at
// end-of-day and picks outcomes by amount (DESIGN §7). Fault switches
// inject NAKs, garbage, a dropped line and an ignored Abort.
//
// It owns no port: simulator.ServePTY/ServeTCP run its handlers.
package terminal
