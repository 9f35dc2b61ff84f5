// Package payment owns card-payment sessions: the persisted state machine
// of a sale, refund or reversal (pending → in_progress → completed |
// failed | cancelled | timeout), the goroutine that owns each terminal's
// session loop, the payment timeout with its Abort and automatic
// reversal, and the reconciliation of a payment left in doubt by a crash
// or a lost line (Repeat Receipt before the terminal takes new work).
// Every transition commits with its outbox event in one transaction, and
// a terminal's Status-Information is persisted before the driver
// acknowledges it. No refund or reversal credits more than its sale: the
// two exclude each other, checked in the creating transaction, and an
// approval for another amount than asked ends needs_review.
//
// It does not speak a wire protocol (device/zvt does, behind
// device.Terminal) and does not serve HTTP (package api does).
package payment
