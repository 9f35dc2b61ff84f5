package escpos

import (
	"fmt"

	"github.com/posgate/posgate/device"
)

// Status is the printer's state, from the four real-time status bytes
// (DLE EOT 1…4) or from an Automatic Status Back message. Bit meanings are
// those of the ESC/POS reference, "DLE EOT Transmit real-time status" and
// "GS a Enable/disable Automatic Status Back".
type Status struct {
	Offline         bool // n=1 bit 3; ASB byte 1 bit 3
	WaitingRecovery bool // n=1 bit 5: waiting for online recovery
	CoverOpen       bool // n=2 bit 2; ASB byte 1 bit 5
	FeedButton      bool // n=2 bit 3: paper being fed by the FEED button
	PaperStop       bool // n=2 bit 5: printing stopped by paper end
	ErrorOccurred   bool // n=2 bit 6
	MechanicalError bool // n=3 bit 2; ASB byte 2 bit 2
	CutterError     bool // n=3 bit 3; ASB byte 2 bit 3
	Unrecoverable   bool // n=3 bit 5; ASB byte 2 bit 5
	AutoRecoverable bool // n=3 bit 6; ASB byte 2 bit 6
	PaperNearEnd    bool // n=4 bits 2–3; ASB byte 3 bits 0–1
	PaperEnd        bool // n=4 bits 5–6; ASB byte 3 bits 2–3
	Raw             []byte
}

// Reply classes, from the reference's rule for telling the printer's
// transmissions apart ("Identification of send status", under GS a and
// DLE EOT): bits 0, 1, 4 and 7 of the first byte.
func isRealtimeReply(b byte) bool { return b&0x93 == 0x12 } // 0xx1xx10
func isASBHeader(b byte) bool     { return b&0x93 == 0x10 } // 0xx1xx00
func isPlainReply(b byte) bool    { return b&0x90 == 0x00 } // 0xx0xxxx: GS r, GS I; ASB bytes 2–4

// ParseRealtime decodes the answers to DLE EOT 1, 2, 3 and 4, in that order.
func ParseRealtime(printer, offline, errs, paper byte) (Status, error) {
	for _, b := range []byte{printer, offline, errs, paper} {
		if !isRealtimeReply(b) {
			return Status{}, fmt.Errorf("real-time status byte %02X: want bits 0xx1xx10", b)
		}
	}
	return Status{
		Offline:         printer&0x08 != 0,
		WaitingRecovery: printer&0x20 != 0,
		CoverOpen:       offline&0x04 != 0,
		FeedButton:      offline&0x08 != 0,
		PaperStop:       offline&0x20 != 0,
		ErrorOccurred:   offline&0x40 != 0,
		MechanicalError: errs&0x04 != 0,
		CutterError:     errs&0x08 != 0,
		Unrecoverable:   errs&0x20 != 0,
		AutoRecoverable: errs&0x40 != 0,
		PaperNearEnd:    paper&0x0C != 0,
		PaperEnd:        paper&0x60 != 0,
		Raw:             []byte{printer, offline, errs, paper},
	}, nil
}

// ParseASB decodes an Automatic Status Back message (4 bytes).
func ParseASB(b [4]byte) (Status, error) {
	if !isASBHeader(b[0]) || !isPlainReply(b[1]) || !isPlainReply(b[2]) || !isPlainReply(b[3]) {
		return Status{}, fmt.Errorf("ASB % X: want 0xx1xx00 then three 0xx0xxxx", b[:])
	}
	return Status{
		Offline:         b[0]&0x08 != 0,
		CoverOpen:       b[0]&0x20 != 0,
		FeedButton:      b[0]&0x40 != 0,
		MechanicalError: b[1]&0x04 != 0,
		CutterError:     b[1]&0x08 != 0,
		Unrecoverable:   b[1]&0x20 != 0,
		AutoRecoverable: b[1]&0x40 != 0,
		PaperNearEnd:    b[2]&0x03 != 0,
		PaperEnd:        b[2]&0x0C != 0,
		Raw:             append([]byte(nil), b[:]...),
	}, nil
}

// paperSensor decodes the answer to GS r 1: bits 0–1 near end, bits 2–3
// paper end.
func paperSensor(b byte) (nearEnd, end bool) { return b&0x03 != 0, b&0x0C != 0 }

// Ready reports whether the printer can print now.
func (s Status) Ready() bool { return s.Err() == nil }

// Err is nil when the printer can print, and otherwise a
// *device.PrinterError matching device.ErrPaperOut, device.ErrCoverOpen or
// device.ErrPrinterMechanism. A printer that is offline for no reason it
// reports (e.g. feeding paper) matches device.ErrOffline, so the print job
// waits for it.
func (s Status) Err() error {
	var kinds []error
	if s.PaperEnd || s.PaperStop {
		kinds = append(kinds, device.ErrPaperOut)
	}
	if s.CoverOpen {
		kinds = append(kinds, device.ErrCoverOpen)
	}
	if s.MechanicalError || s.CutterError || s.Unrecoverable || s.AutoRecoverable {
		kinds = append(kinds, device.ErrPrinterMechanism)
	}
	if len(kinds) == 0 && !s.Offline {
		return nil
	}
	if len(kinds) == 0 {
		kinds = append(kinds, device.ErrOffline)
	}
	return &device.PrinterError{Command: DLE, Status: s.Raw, Message: "ESC/POS status", Kinds: append(kinds, device.ErrPrinterRejected)}
}

// Device returns the status in the shape the fiscal printers report it.
func (s Status) Device() device.PrinterStatus {
	return device.PrinterStatus{
		PaperOut:       s.PaperEnd || s.PaperStop,
		PaperLow:       s.PaperNearEnd,
		CoverOpen:      s.CoverOpen,
		MechanismFault: s.MechanicalError || s.CutterError || s.Unrecoverable || s.AutoRecoverable,
		Raw:            s.Raw,
	}
}

// condition names what keeps the printer from printing, for events; ""
// when it is ready.
func (s Status) condition() string {
	switch {
	case s.PaperEnd || s.PaperStop:
		return "paper out"
	case s.CoverOpen:
		return "cover open"
	case s.MechanicalError || s.CutterError || s.Unrecoverable || s.AutoRecoverable:
		return "mechanism fault"
	case s.Offline:
		return "offline"
	}
	return ""
}
