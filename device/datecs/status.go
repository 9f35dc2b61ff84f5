package datecs

import (
	"github.com/posgate/posgate/device"
)

// Bit is one status bit: the byte (0…7) and the bit in it (0…6). Bit 7 of
// every status byte is always 1.
type Bit struct{ Byte, Bit uint8 }

// Status bits of the X protocol (X spec pp.46-47). The old ISL protocol uses
// the same positions for all of these within its six bytes (§2.2).
var (
	BitSyntax        = Bit{0, 0} // # syntax error
	BitInvalidCmd    = Bit{0, 1} // # invalid command code
	BitClockNotSet   = Bit{0, 2}
	BitMechanism     = Bit{0, 4} // # printing mechanism failure
	BitGeneralError  = Bit{0, 5} // OR of the # bits
	BitCoverOpen     = Bit{0, 6}
	BitOverflow      = Bit{1, 0} // # overflow
	BitNotPermitted  = Bit{1, 1} // # command not permitted
	BitPaperOut      = Bit{2, 0} // # end of paper
	BitPaperLow      = Bit{2, 1}
	BitJournalFull   = Bit{2, 2}
	BitReceiptOpen   = Bit{2, 3}
	BitJournalLow    = Bit{2, 4}
	BitNonFiscalOpen = Bit{2, 5}
	BitFMAccess      = Bit{4, 0} // * fiscal memory access error
	BitTaxNumberSet  = Bit{4, 1}
	BitSerialSet     = Bit{4, 2}
	BitFMLow         = Bit{4, 3} // fewer than 60 Z records left
	BitFMFull        = Bit{4, 4} // * fiscal memory full
	BitFMGeneral     = Bit{4, 5} // OR of the * bits
	BitFMMissing     = Bit{4, 6} // * fiscal memory missing or damaged
	BitFMFormatted   = Bit{5, 1}
	BitFiscalized    = Bit{5, 3}
	BitVATSet        = Bit{5, 4}
)

// Has reports whether bit b is set in the status bytes st.
func Has(st []byte, b Bit) bool {
	return int(b.Byte) < len(st) && st[b.Byte]&(1<<b.Bit) != 0
}

// Set sets bit b in st.
func Set(st []byte, b Bit) {
	if int(b.Byte) < len(st) {
		st[b.Byte] |= 1 << b.Bit
	}
}

// PrinterStatus decodes status bytes.
func PrinterStatus(st []byte) device.PrinterStatus {
	return device.PrinterStatus{
		PaperOut:          Has(st, BitPaperOut),
		PaperLow:          Has(st, BitPaperLow),
		CoverOpen:         Has(st, BitCoverOpen),
		MechanismFault:    Has(st, BitMechanism),
		ClockNotSet:       Has(st, BitClockNotSet),
		ReceiptOpen:       Has(st, BitReceiptOpen),
		NonFiscalOpen:     Has(st, BitNonFiscalOpen),
		JournalFull:       Has(st, BitJournalFull),
		JournalNearlyFull: Has(st, BitJournalLow),
		FiscalMemoryFull:  Has(st, BitFMFull),
		FiscalMemoryLow:   Has(st, BitFMLow),
		FiscalMemoryError: Has(st, BitFMAccess) || Has(st, BitFMMissing),
		Fiscalized:        Has(st, BitFiscalized),
		Raw:               append([]byte(nil), st...),
	}
}

// inReceipt lists the commands that work inside an open receipt; when one of
// them is refused and no receipt is open, the cause is ErrNoReceipt.
var inReceipt = map[uint16]bool{
	cmdSale: true, cmdSubtotal: true, cmdPayment: true, cmdFiscalText: true,
	cmdClose: true, cmdCancel: true, cmdNonFiscalText: true, cmdNonFiscalClose: true,
}

// checkAnswer turns an answer's error field and status bytes into an error.
// The answer fails when Err is non-zero (ErpNet.FP #135: -111016 with clean
// status, nothing printed, reported as success there) or when a status bit
// marked # in the spec is set. For read-only commands, only the bits that
// describe the command itself (syntax, code, overflow, not permitted) fail
// it: a status query must still answer while the paper is out.
func checkAnswer(cmd uint16, code int, st []byte, readOnly bool) error {
	var kinds []error
	add := func(b Bit, err error) {
		if Has(st, b) {
			kinds = append(kinds, err)
		}
	}
	add(BitSyntax, device.ErrCommandSyntax)
	add(BitInvalidCmd, device.ErrUnknownCommand)
	add(BitOverflow, device.ErrPrinterOverflow)
	add(BitNotPermitted, device.ErrCommandNotPermitted)
	failed := code != 0 || len(kinds) > 0
	if !readOnly {
		add(BitPaperOut, device.ErrPaperOut)
		add(BitMechanism, device.ErrPrinterMechanism)
		failed = failed || len(kinds) > 0
	}
	if !failed {
		return nil
	}
	// The conditions behind a refusal, once the answer is known to be one.
	add(BitCoverOpen, device.ErrCoverOpen)
	add(BitFMFull, device.ErrFiscalMemoryFull)
	if Has(st, BitFMAccess) || Has(st, BitFMMissing) {
		kinds = append(kinds, device.ErrFiscalMemory)
	}
	add(BitJournalFull, device.ErrJournalFull)
	add(BitClockNotSet, device.ErrClockNotSet)
	if readOnly {
		add(BitPaperOut, device.ErrPaperOut)
	}
	if Has(st, BitNotPermitted) || code != 0 {
		open := Has(st, BitReceiptOpen) || Has(st, BitNonFiscalOpen)
		switch {
		case inReceipt[cmd] && !open:
			kinds = append(kinds, device.ErrNoReceipt)
		case !inReceipt[cmd] && open:
			kinds = append(kinds, device.ErrReceiptOpen)
		}
	}
	kinds = append(kinds, device.ErrPrinterRejected)
	return &device.PrinterError{
		Command: int(cmd),
		Code:    code,
		Status:  append([]byte(nil), st...),
		Kinds:   dedup(kinds),
	}
}

func dedup(errs []error) []error {
	out := errs[:0]
	for i, e := range errs {
		dup := false
		for _, f := range errs[:i] {
			if e == f {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
}
