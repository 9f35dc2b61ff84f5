package zvt

import "fmt"

// Commands (CLASS<<8 | INSTR) posgate sends or answers (PA00P015 §14).
const (
	CmdRegistration    = 0x0600
	CmdAuthorization   = 0x0601
	CmdLogOff          = 0x0602
	CmdCompletion      = 0x060F // PT → ECR
	CmdAbortPT         = 0x061E // PT → ECR
	CmdRepeatReceipt   = 0x0620
	CmdReversal        = 0x0630
	CmdRefund          = 0x0631
	CmdEndOfDay        = 0x0650
	CmdPreAuth         = 0x0622 // Pre-Authorisation / Reservation (§2.8)
	CmdPartialReversal = 0x0623 // Partial-Reversal of a Pre-Authorisation (§2.10)
	CmdBookTotal       = 0x0624 // Book Total (§2.13)
	CmdPreAuthReversal = 0x0625 // Pre-Authorisation Reversal (§2.14)
	CmdTurnoverTotals  = 0x0610 // Send Turnover Totals (§2.43)
	CmdDiagnosis       = 0x0670 // Diagnosis (§2.17)
	CmdSetTimeECR      = 0x0401 // PT → ECR: Set Date and Time in ECR (§3.4)
	CmdAbort           = 0x06B0 // ECR → PT
	CmdPrintLine       = 0x06D1 // PT → ECR
	CmdPrintTextBlock  = 0x06D3 // PT → ECR
	CmdStatusEnquiry   = 0x0501
	CmdStatusInfo      = 0x040F // PT → ECR
	CmdIntermediate    = 0x04FF // PT → ECR
	respPositive       = 0x8000
	serviceSendLastSI  = 0x01 // Repeat Receipt service byte: send the Status-Information again
	defaultConfigByte  = 0xBE
	configIntermediate = 0x08
)

var cmdNames = map[uint16]string{
	CmdRegistration:    "Registration",
	CmdAuthorization:   "Authorization",
	CmdLogOff:          "Log-Off",
	CmdCompletion:      "Completion",
	CmdAbortPT:         "Abort",
	CmdRepeatReceipt:   "Repeat Receipt",
	CmdReversal:        "Reversal",
	CmdRefund:          "Refund",
	CmdEndOfDay:        "End-of-Day",
	CmdAbort:           "Abort",
	CmdPrintLine:       "Print Line",
	CmdPrintTextBlock:  "Print Text-Block",
	CmdStatusEnquiry:   "Status Enquiry",
	CmdStatusInfo:      "Status-Information",
	CmdIntermediate:    "Intermediate Status",
	CmdPreAuth:         "Pre-Authorisation",
	CmdPartialReversal: "Partial-Reversal",
	CmdBookTotal:       "Book Total",
	CmdPreAuthReversal: "Pre-Authorisation Reversal",
	CmdTurnoverTotals:  "Send Turnover Totals",
	CmdDiagnosis:       "Diagnosis",
	CmdReadCard:        "Read Card",
	CmdSetTimeECR:      "Set Date and Time in ECR",
	respPositive:       "Ack",
}

// CommandName returns the spec's name for a command or response.
func CommandName(a APDU) string {
	if a.Class == 0x84 {
		switch {
		case a.Instr == 0:
			return "Ack"
		case a.Instr == 0x1E && len(a.Data) > 0: // the error form 84 1E <result-code> (§2.1)
			return "Nack " + ResultText(a.Data[0])
		}
		return "Nack " + ResultText(a.Instr)
	}
	if n, ok := cmdNames[a.Command()]; ok {
		return n
	}
	return "Command " + a.String()
}

// Ack is the positive response 80 00 00.
func Ack() APDU { return APDU{Class: 0x80, Instr: 0x00} }

// Nack is the negative response 84 code 00.
func Nack(code byte) APDU { return APDU{Class: 0x84, Instr: code} }

// Registration builds 06 00: password, config byte, currency code, and an
// empty BMP 06 that activates TLV (PA00P015 §2.1).
func Registration(pwd []byte, config byte, currency int64) APDU {
	d := append(append([]byte{}, pwd...), config)
	d = append(d, bcd(currency, 2)...)
	d = AppendField(d, Field{BMP: 0x06})
	return APDU{Class: 0x06, Instr: 0x00, Data: d}
}

// Authorization builds 06 01 for amount (minor units) in currency.
func Authorization(amount, currency int64) APDU {
	d := AppendFields(nil, []Field{
		{BMP: 0x04, Value: bcd(amount, 6)},
		{BMP: 0x49, Value: bcd(currency, 2)},
		{BMP: 0x06},
	})
	return APDU{Class: 0x06, Instr: 0x01, Data: d}
}

// Refund builds 06 31 for amount; currency 0 leaves BMP 49 out.
func Refund(pwd []byte, amount, currency int64) APDU {
	d := AppendField(append([]byte{}, pwd...), Field{BMP: 0x04, Value: bcd(amount, 6)})
	if currency != 0 {
		d = AppendField(d, Field{BMP: 0x49, Value: bcd(currency, 2)})
	}
	return APDU{Class: 0x06, Instr: 0x31, Data: d}
}

// Reversal builds 06 30 for the transaction with receiptNo.
func Reversal(pwd []byte, receiptNo int) APDU {
	d := AppendField(append([]byte{}, pwd...), Field{BMP: 0x87, Value: bcd(int64(receiptNo), 2)})
	return APDU{Class: 0x06, Instr: 0x30, Data: d}
}

// EndOfDay builds 06 50.
func EndOfDay(pwd []byte) APDU {
	return APDU{Class: 0x06, Instr: 0x50, Data: append([]byte{}, pwd...)}
}

// RepeatReceipt builds 06 20 asking for the last Status-Information again.
func RepeatReceipt(pwd []byte) APDU {
	d := AppendField(append([]byte{}, pwd...), Field{BMP: 0x03, Value: []byte{serviceSendLastSI}})
	return APDU{Class: 0x06, Instr: 0x20, Data: d}
}

// StatusEnquiry builds 05 01.
func StatusEnquiry(pwd []byte) APDU {
	return APDU{Class: 0x05, Instr: 0x01, Data: append([]byte{}, pwd...)}
}

// AbortCmd builds the ECR's 06 B0.
func AbortCmd() APDU { return APDU{Class: 0x06, Instr: 0xB0} }

// LogOff builds 06 02.
func LogOff() APDU { return APDU{Class: 0x06, Instr: 0x02} }

// Intermediate builds the PT's 04 FF with a status code.
func Intermediate(code byte) APDU { return APDU{Class: 0x04, Instr: 0xFF, Data: []byte{code}} }

// Completion builds the PT's 06 0F with BMP fields.
func Completion(fs ...Field) APDU {
	return APDU{Class: 0x06, Instr: 0x0F, Data: AppendFields(nil, fs)}
}

// AbortPT builds the PT's 06 1E with a result code.
func AbortPT(code byte) APDU { return APDU{Class: 0x06, Instr: 0x1E, Data: []byte{code}} }

// PrintLine builds the PT's 06 D1: an attribute byte and the text. An
// attribute with the top bit set (other than 0x80) marks the last line.
func PrintLine(attr byte, text string) APDU {
	return APDU{Class: 0x06, Instr: 0xD1, Data: append([]byte{attr}, text...)}
}

// PrintTextBlock builds the PT's 06 D3 (PA00P015 §3.6): BMP 06 holding tag
// 25 with one tag 07 per line and, as its last item, attribute tag 09 = 81
// (1xxx xxxx, not 80: the receipt ends here), and tag 1F07 with the receipt
// type (1 merchant, 2 customer, 3 administration).
func PrintTextBlock(receiptType byte, lines []string) APDU {
	var texts []byte
	for _, l := range lines {
		texts = AppendTLV(texts, TLV{Tag: TagTextLine, Value: []byte(l)})
	}
	texts = AppendTLV(texts, TLV{Tag: TagAttribute, Value: []byte{0x81}})
	var tlv []byte
	tlv = AppendTLV(tlv, TLV{Tag: TagReceiptType, Value: []byte{receiptType}})
	tlv = AppendTLV(tlv, TLV{Tag: TagPrintTexts, Value: texts})
	return APDU{Class: 0x06, Instr: 0xD3, Data: AppendField(nil, Field{BMP: 0x06, Value: tlv})}
}

// StatusInfo builds the PT's 04 0F from BMP fields.
func StatusInfo(fs ...Field) APDU {
	return APDU{Class: 0x04, Instr: 0x0F, Data: AppendFields(nil, fs)}
}

// BCDField builds a fixed-size BCD field, e.g. BCDField(0x04, 1234, 6).
func BCDField(bmp byte, v int64, size int) Field { return Field{BMP: bmp, Value: bcd(v, size)} }

// ResultText returns the meaning of a result code (PA00P015 §10).
func ResultText(code byte) string {
	if t, ok := resultTexts[code]; ok {
		return t
	}
	if code >= 0x01 && code <= 0x63 {
		return fmt.Sprintf("host error %d", code)
	}
	return fmt.Sprintf("error %02X", code)
}

var resultTexts = map[byte]string{
	0x00: "no error",
	0x64: "card not readable",
	0x65: "card data not present",
	0x66: "processing error",
	0x6A: "turnover file full",
	0x6B: "function deactivated (terminal not registered)",
	0x6C: "abort via timeout or abort key",
	0x6F: "wrong currency",
	0x77: "end-of-day batch not possible",
	0x78: "card expired",
	0x7A: "card unknown",
	0x7D: "communication error",
	0x83: "function not possible",
	0x9A: "zvt protocol error",
	0x9C: "please wait",
	0xA0: "receiver not ready",
	0xA3: "no connection",
	0xB4: "already reversed",
	0xB5: "reversal not possible",
	0xC3: "maximum amount exceeded",
	0xCC: "printer not ready",
	0xDC: "card inserted",
	0xF0: "open end-of-day batch present",
	0xFF: "system error",
	0x05: "declined by host",
}

// IntermediateText returns the meaning of a 04 FF status code (PA00P015 p.125).
func IntermediateText(code byte) string {
	if t, ok := intermediateTexts[code]; ok {
		return t
	}
	return fmt.Sprintf("status %02X", code)
}

var intermediateTexts = map[byte]string{
	0x00: "waiting for amount confirmation",
	0x01: "please watch PIN pad",
	0x02: "please watch PIN pad",
	0x04: "waiting for host",
	0x05: "sending auto-reversal",
	0x0A: "insert card",
	0x0B: "please remove card",
	0x0E: "please wait",
	0x0F: "commencing automatic end-of-day",
	0x15: "incorrect PIN",
	0x17: "please wait",
	0x1C: "approved, please take goods",
	0x1D: "declined",
}

// TerminalStatusText returns the meaning of a terminal status (PA00P015 §11).
func TerminalStatusText(code byte) string {
	switch code {
	case 0x00:
		return "ready"
	case 0x51:
		return "initialisation required"
	case 0x62:
		return "date/time wrong"
	case 0x9C:
		return "please wait"
	case 0xB1:
		return "memory full, end-of-day required"
	case 0xC2:
		return "diagnosis required"
	case 0xCC:
		return "printer not ready"
	case 0xDC:
		return "card inserted"
	case 0xDF:
		return "out of order"
	case 0xF0:
		return "reconciliation required"
	}
	return fmt.Sprintf("status %02X", code)
}

// PermittedCommands is the tag 26 list posgate sends at Registration: the
// commands it accepts from the terminal besides Status-Information,
// Completion, Abort and Intermediate Status, which are always allowed
// (PA00P015 tag 26). Listing 06 D3 asks for receipts as text blocks (§3.6).
var PermittedCommands = []uint16{CmdPrintLine, CmdPrintTextBlock, CmdSetTimeECR}

// RegistrationTLV builds 06 00 with a TLV container holding the list of
// permitted commands (tag 26 with one tag 0A per command), as the spec
// strongly recommends for an ECR that speaks TLV (§2.1).
func RegistrationTLV(pwd []byte, config byte, currency int64, permitted []uint16) APDU {
	d := append(append([]byte{}, pwd...), config)
	d = append(d, bcd(currency, 2)...)
	var list []byte
	for _, c := range permitted {
		list = AppendTLV(list, TLV{Tag: 0x0A, Value: []byte{byte(c >> 8), byte(c)}})
	}
	d = AppendField(d, Field{BMP: 0x06, Value: AppendTLV(nil, TLV{Tag: TagPermittedCmds, Value: list})})
	return APDU{Class: 0x06, Instr: 0x00, Data: d}
}

// RepeatReceiptService builds 06 20 with a service byte (§2.20): bit 0
// asks for the Status-Information again, bit 1 for no receipt.
func RepeatReceiptService(pwd []byte, service byte) APDU {
	d := AppendField(append([]byte{}, pwd...), Field{BMP: 0x03, Value: []byte{service}})
	return APDU{Class: 0x06, Instr: 0x20, Data: d}
}

// syncTLV is the receipt-number mirror, TLV 1F1F (chapter 4): the last
// receipt number the ECR knows, as binary, or empty when it knows none.
func syncTLV(last int) Field {
	var v []byte
	if last > 0 {
		v = []byte{byte(last >> 8), byte(last)}
	}
	return Field{BMP: 0x06, Value: AppendTLV(nil, TLV{Tag: TagReceiptNumSync, Value: v})}
}

// PreAuthorization builds 06 22 for amount in currency (§2.8).
func PreAuthorization(amount, currency int64) APDU {
	d := AppendFields(nil, []Field{
		{BMP: 0x04, Value: bcd(amount, 6)},
		{BMP: 0x49, Value: bcd(currency, 2)},
	})
	return APDU{Class: 0x06, Instr: 0x22, Data: d}
}

// BookTotal builds 06 24 (§2.13): book amount of the reservation with
// receiptNo; 13.08 gives it no password.
func BookTotal(receiptNo int, amount, currency int64) APDU {
	d := AppendFields(nil, []Field{
		{BMP: 0x87, Value: bcd(int64(receiptNo), 2)},
		{BMP: 0x04, Value: bcd(amount, 6)},
		{BMP: 0x49, Value: bcd(currency, 2)},
	})
	return APDU{Class: 0x06, Instr: 0x24, Data: d}
}

// PartialReversal builds 06 23 (§2.10): release the unused amount of the
// reservation with receiptNo and book the rest.
func PartialReversal(receiptNo int, unused, currency int64) APDU {
	d := AppendFields(nil, []Field{
		{BMP: 0x87, Value: bcd(int64(receiptNo), 2)},
		{BMP: 0x04, Value: bcd(unused, 6)},
		{BMP: 0x49, Value: bcd(currency, 2)},
	})
	return APDU{Class: 0x06, Instr: 0x23, Data: d}
}

// PreAuthReversal builds 06 25 (§2.14): release the whole reservation.
func PreAuthReversal(receiptNo int) APDU {
	d := AppendField(nil, Field{BMP: 0x87, Value: bcd(int64(receiptNo), 2)})
	return APDU{Class: 0x06, Instr: 0x25, Data: d}
}

// TurnoverTotals builds 06 10 (§2.43).
func TurnoverTotals(pwd []byte) APDU {
	return APDU{Class: 0x06, Instr: 0x10, Data: append([]byte{}, pwd...)}
}

// Diagnosis builds 06 70 (§2.17).
func Diagnosis() APDU { return APDU{Class: 0x06, Instr: 0x70} }
