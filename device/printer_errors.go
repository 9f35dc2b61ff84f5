package device

import (
	"errors"
	"fmt"
	"strings"
)

// Printer errors. A *PrinterError matches every sentinel that its error code
// and status bytes imply, so errors.Is(err, ErrPaperOut) works whatever else
// the printer reported with it.
var (
	// ErrPrinterRejected matches every refusal by the printer, including an
	// error code the driver does not know (ErpNet.FP issue #135: -111016 with
	// clean status bytes; nothing was printed).
	ErrPrinterRejected     = errors.New("printer rejected the command")
	ErrPaperOut            = errors.New("printer out of paper")
	ErrCoverOpen           = errors.New("printer cover open")
	ErrPrinterMechanism    = errors.New("printing mechanism failure")
	ErrFiscalMemoryFull    = errors.New("fiscal memory full")
	ErrFiscalMemory        = errors.New("fiscal memory error")
	ErrJournalFull         = errors.New("electronic journal full")
	ErrClockNotSet         = errors.New("printer clock not set")
	ErrReceiptOpen         = errors.New("a receipt is open")
	ErrNoReceipt           = errors.New("no receipt open")
	ErrCommandNotPermitted = errors.New("command not permitted in this state")
	ErrCommandSyntax       = errors.New("command syntax error")
	ErrUnknownCommand      = errors.New("invalid command code")
	ErrPrinterOverflow     = errors.New("printer register overflow")

	// ErrPrintUncertain means a driver could not tell from the printer
	// whether a document was printed: the printer's last receipt moved on,
	// but not the way this document would have moved it. Nothing is
	// re-sent; a person must look at the printer's journal.
	ErrPrintUncertain = errors.New("cannot tell whether the document was printed")
)

// PrinterError is a command the printer answered but refused.
type PrinterError struct {
	Command int    // command code, e.g. 0x31
	Code    int    // the answer's error field; 0 if only the status bytes failed it
	Status  []byte // the answer's status bytes
	Message string // the driver's or printer's text for Code, if known
	Kinds   []error
}

// Error names the command, the code and every condition the printer reported.
func (e *PrinterError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "printer command %02Xh failed", e.Command)
	if e.Code != 0 {
		fmt.Fprintf(&b, ": code %d", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, " (%s)", e.Message)
	}
	for _, k := range e.Kinds {
		if k == ErrPrinterRejected {
			continue
		}
		b.WriteString(": ")
		b.WriteString(k.Error())
	}
	if len(e.Status) > 0 {
		fmt.Fprintf(&b, " [status % X]", e.Status)
	}
	return b.String()
}

// Unwrap returns the sentinels the error matches; ErrPrinterRejected is always one.
func (e *PrinterError) Unwrap() []error {
	if len(e.Kinds) == 0 {
		return []error{ErrPrinterRejected}
	}
	return e.Kinds
}
