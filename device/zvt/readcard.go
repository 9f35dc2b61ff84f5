package zvt

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/posgate/posgate/device"
)

// CmdReadCard is Read Card (§2.21): the terminal reads a card and sends
// its data in a Status-Information, which ends the command (no
// Completion).
const CmdReadCard = 0x06C0

// ReadCard builds 06 C0 <timeout> (§2.21): the seconds the terminal waits
// for a card, 1 to 255 (0 would be "infinite", which the spec advises
// against). Without 19<card-type> the terminal reads the magnetic stripe,
// or, with a motor-insertion reader, chip and stripe.
func ReadCard(timeout time.Duration) APDU {
	s := min(max(int(timeout/time.Second), 1), 255)
	return APDU{Class: 0x06, Instr: 0xC0, Data: []byte{byte(s)}}
}

// ReadCard asks the terminal to read a card (06 C0, §2.21) and returns its
// type and masked number; the full number never leaves the driver, and
// the trace blanks the tracks. The terminal answers with a
// Status-Information (§3.1.2), after whose acknowledgement master rights
// are back without a Completion; a card not presented within timeout, or
// an Abort, ends it with a result code (Outcome not Approved). Errors: the
// Terminal contract's; a terminal without the function returns an error
// wrapping ErrNotSupported.
func (c *Client) ReadCard(ctx context.Context, timeout time.Duration) (device.CardRead, error) {
	var data []byte
	res, err := c.exchangeUntilStatus(ctx, ReadCard(timeout), func(d []byte) { data = d })
	if err != nil {
		return device.CardRead{}, fmt.Errorf("read card: %w", err)
	}
	out := device.CardRead{Outcome: res.Outcome, Code: res.Code, Message: res.Message}
	if res.Outcome != device.Approved {
		return out, nil
	}
	fs, _ := DecodeFields(data) // what parses before an unknown BMP is kept
	m := fieldMap(fs)
	switch {
	case m[0x2E] != nil || m[0xA7] != nil:
		out.Type = "chip"
	case m[0x23] != nil || m[0x24] != nil || m[0x2D] != nil:
		out.Type = "magnetic_stripe"
	}
	if v, ok := m[0x22]; ok {
		out.MaskedPAN = MaskPAN(v)
	} else if v, ok := m[0x23]; ok {
		out.MaskedPAN = maskTrack2PAN(v)
	}
	if v, ok := m[0x8B]; ok {
		out.CardName = strings.TrimRight(string(v), "\x00")
	}
	return out, nil
}

// maskTrack2PAN masks the card number of track 2 data (BMP 23, BCD
// packed, the field separator as nibble D, E for digits the terminal
// masked, F padding), as MaskPAN does.
func maskTrack2PAN(v []byte) string {
	digits, _, _ := strings.Cut(bcdDigits(v), "D")
	b := make([]byte, 0, len(digits))
	for i := 0; i < len(digits); i++ {
		if d := digits[i]; d <= '9' || d == 'E' {
			b = append(b, d)
		}
	}
	for i := range b {
		if (i >= 4 && i < len(b)-4) || b[i] == 'E' {
			b[i] = '*'
		}
	}
	if len(b) <= 8 {
		return strings.Repeat("*", len(b))
	}
	return string(b)
}
