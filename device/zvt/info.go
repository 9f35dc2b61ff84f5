package zvt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/posgate/posgate/device"
)

// ParseStatusInfo turns the data block of a 04 0F into a TxInfo. The PAN
// is masked here, so it never travels further in clear.
//
// A BMP missing from the table stops the parser, since its length is
// unknown. Terminals add vendor fields after the standard ones, so in that
// case the info parsed so far is returned together with an error wrapping
// ErrUnknownBMP, and the caller decides whether it is enough.
func ParseStatusInfo(data []byte) (*device.TxInfo, error) {
	fs, err := DecodeFields(data)
	if err != nil && !errors.Is(err, ErrUnknownBMP) {
		return nil, fmt.Errorf("parse status information: %w", err)
	}
	info := statusInfo(fieldMap(fs))
	if err != nil {
		return info, fmt.Errorf("parse status information: %w", err)
	}
	return info, nil
}

func statusInfo(m map[byte][]byte) *device.TxInfo {
	info := &device.TxInfo{}
	num := func(bmp byte) int64 {
		v, _ := unbcd(m[bmp])
		return v
	}
	if v, ok := m[0x27]; ok && len(v) == 1 {
		info.ResultCode = v[0]
	}
	info.Amount = num(0x04)
	if _, ok := m[0x49]; ok {
		info.Currency = CurrencyAlpha(num(0x49))
	}
	info.ReceiptNo = int(num(0x87))
	info.Trace = int(num(0x0B))
	info.OrigTrace = int(num(0x37))
	if v, ok := m[0x29]; ok {
		info.TerminalID = bcdDigits(v)
	}
	if v, ok := m[0x0D]; ok {
		info.Date = bcdDigits(v)
	}
	if v, ok := m[0x0C]; ok {
		info.Time = bcdDigits(v)
	}
	if v, ok := m[0x8B]; ok {
		info.CardName = strings.TrimRight(string(v), "\x00") // null-terminated (§3.1.1)
	}
	if v, ok := m[0x22]; ok {
		info.PAN = MaskPAN(v)
	}
	if v, ok := m[0x3B]; ok {
		info.AID = bcdDigits(v)
	}
	return info
}

// MaskPAN renders a BMP 22 value (BCD digits, E = already masked, F = pad)
// keeping at most the first 4 and last 4 digits (PCI DSS allows 6+4; we
// show less).
func MaskPAN(v []byte) string {
	digits := strings.TrimRight(bcdDigits(v), "F")
	b := []byte(digits)
	for i := range b {
		if i >= 4 && i < len(b)-4 {
			b[i] = '*'
		} else if b[i] == 'E' {
			b[i] = '*'
		}
	}
	if len(b) <= 8 { // too short to show anything safely
		return strings.Repeat("*", len(b))
	}
	return string(b)
}

// sensitive BMPs never appear in a trace or a log: card number and tracks.
var sensitive = map[byte]bool{0x22: true, 0x23: true, 0x24: true, 0x2D: true, 0x3A: true, 0x2E: true}

// Masked returns a copy of a with card data blanked (BMP 22 is masked like
// MaskPAN, tracks and CVV are zeroed), for traces. Data that does not parse
// as BMP fields is returned as is, since it holds no BMP 22 we could find.
func Masked(a APDU) APDU {
	fs, off, ok := apduFields(a)
	if !ok {
		return a
	}
	changed := false
	for i, f := range fs {
		if !sensitive[f.BMP] {
			continue
		}
		changed = true
		v := make([]byte, len(f.Value))
		if f.BMP == 0x22 {
			copy(v, f.Value)
			n := 2 * len(v) // digits, not counting the F padding
			for n > 0 && nibble(v, n-1) == 0x0F {
				n--
			}
			for d := 4; d < n-4; d++ { // nibble d → E
				if d%2 == 0 {
					v[d/2] = 0xE0 | v[d/2]&0x0F
				} else {
					v[d/2] = v[d/2]&0xF0 | 0x0E
				}
			}
		}
		fs[i].Value = v
	}
	if !changed {
		return a
	}
	return APDU{Class: a.Class, Instr: a.Instr, Data: AppendFields(append([]byte{}, a.Data[:off]...), fs)}
}

// apduFields parses the BMP part of a's data block, skipping the fixed
// prefix some commands carry (a password, a config byte).
func apduFields(a APDU) (fs []Field, off int, ok bool) {
	switch a.Command() {
	case CmdRegistration:
		off = min(len(a.Data), 6) // pwd, config, currency
		if len(a.Data) > 4 && len(a.Data) < 6 {
			off = 4
		}
	case CmdReversal, CmdRefund, CmdEndOfDay, CmdRepeatReceipt, CmdStatusEnquiry:
		off = min(len(a.Data), 3)
	case CmdIntermediate, CmdAbortPT, CmdPrintLine:
		return nil, 0, false
	}
	if a.Class == 0x80 || a.Class == 0x84 {
		return nil, 0, false
	}
	fs, err := DecodeFields(a.Data[off:])
	if err != nil {
		return nil, 0, false
	}
	return fs, off, true
}

// Describe renders a for a trace: the command name and its fields, card
// data masked. It never fails; unparsable data is shown as hex.
func Describe(a APDU) string {
	var sb strings.Builder
	sb.WriteString(a.String())
	sb.WriteByte(' ')
	sb.WriteString(CommandName(a))
	switch a.Command() {
	case CmdIntermediate:
		if len(a.Data) > 0 {
			fmt.Fprintf(&sb, " %02X %q", a.Data[0], IntermediateText(a.Data[0]))
		}
		return sb.String()
	case CmdAbortPT:
		if len(a.Data) > 0 {
			fmt.Fprintf(&sb, " %02X %q", a.Data[0], ResultText(a.Data[0]))
		}
		return sb.String()
	case CmdPrintLine:
		if len(a.Data) > 0 {
			fmt.Fprintf(&sb, " attr=%02X %q", a.Data[0], a.Data[1:])
		}
		return sb.String()
	}
	m := Masked(a)
	fs, off, ok := apduFields(m)
	if !ok {
		if len(m.Data) > 0 {
			fmt.Fprintf(&sb, " data=% X", m.Data)
		}
		return sb.String()
	}
	if off > 0 {
		fmt.Fprintf(&sb, " fixed=% X", m.Data[:off])
	}
	for _, f := range fs {
		fmt.Fprintf(&sb, " %02X(%s)=", f.BMP, BMPName(f.BMP))
		switch f.BMP {
		case 0x22:
			sb.WriteString(MaskPAN(f.Value))
		case 0x8B, 0x2A:
			fmt.Fprintf(&sb, "%q", f.Value)
		case 0x04:
			v, _ := unbcd(f.Value)
			fmt.Fprintf(&sb, "%d.%02d", v/100, v%100)
		case 0x27:
			fmt.Fprintf(&sb, "%02X %q", f.Value[0], ResultText(f.Value[0]))
		default:
			if sensitive[f.BMP] {
				sb.WriteString("<masked>")
			} else {
				fmt.Fprintf(&sb, "% X", f.Value)
			}
		}
	}
	return sb.String()
}

func nibble(b []byte, i int) byte {
	if i%2 == 0 {
		return b[i/2] >> 4
	}
	return b[i/2] & 0x0F
}
