package device

import (
	"context"
	"time"
)

// Degraded is the state kind a printer publishes when it stays connected
// but cannot print (paper out, cover open); Connected is published again
// when it can. The value is the event name of DESIGN §6.
const Degraded StateKind = "device.degraded"

// SlipPrinter is a plain receipt printer (ESC/POS): unlike a fiscal
// Printer it keeps no fiscal memory, no receipt numbers and no "last
// document", so it cannot be asked what it printed. It prints what it is
// given, laid out by the caller (a country profile puts the IIC, the FIC,
// the verification URL and its QR code on the slip).
//
// PrintSlip is idempotent per Slip.ID within what such a printer allows:
// a slip whose bytes were all written and whose printing the printer then
// confirmed (a status request it answers only after processing everything
// before it) is never sent again; a slip whose attempt was interrupted
// (line lost, paper ran out and stayed out, daemon crashed) is sent again
// whole, with a copy mark, because part or all of it may already be on
// paper. A printer that is not ready before anything was written returns
// ErrPaperOut, ErrCoverOpen or ErrOffline and records nothing, so the
// later print is the original.
type SlipPrinter interface {
	PrintSlip(ctx context.Context, s Slip) (SlipResult, error)
}

// Align is a line's horizontal alignment.
type Align int

// Alignments, with the values of ESC a.
const (
	AlignLeft   Align = 0
	AlignCenter Align = 1
	AlignRight  Align = 2
)

// SlipLine is one printed line.
type SlipLine struct {
	Text   string
	Align  Align
	Bold   bool
	Double bool // double width and height; half as many characters fit
}

// Slip is a document for a receipt printer.
type Slip struct {
	// ID is the caller's identity of the document (e.g. the invoice ID);
	// required, it is the idempotency key.
	ID    string
	Lines []SlipLine // printed in order
	// QR, if set, is printed as a QR code after Lines (e.g. the
	// verification URL), then Trailer.
	QR      string
	Trailer []SlipLine
}

// SlipResult is a printed slip.
type SlipResult struct {
	ID string
	// Copy is true when an earlier attempt had been interrupted, so this
	// one was printed with the copy mark.
	Copy bool
	// Recovered is true when the slip had already been printed and
	// confirmed by an earlier call: nothing was sent.
	Recovered bool
	Time      time.Time // when the printer confirmed it
}
