package zvt

import (
	"time"

	"github.com/posgate/posgate/device"
)

// syncCommands take the receipt-number mirror TLV 1F1F (PA00P015 chapter
// 4), with the length of their fixed prefix (a password) before the BMPs.
var syncCommands = map[uint16]int{
	CmdAuthorization: 0, CmdPreAuth: 0, CmdPartialReversal: 0, CmdBookTotal: 0, CmdPreAuthReversal: 0,
	CmdReversal: 3, CmdRefund: 3, CmdEndOfDay: 3,
}

// fillSync adds TLV 1F1F with the last receipt number the terminal
// reported to a transaction command, once posgate registered with a TLV
// container. A terminal whose last receipt is one ahead of it then knows
// posgate never got that transaction and reverses it (chapter 4); with no
// receipt number known the tag goes empty, never 0, which could reverse
// receipt 1. Caller runs on the port's goroutine.
func (c *Client) fillSync(cmd APDU) APDU {
	off, ok := syncCommands[cmd.Command()]
	if !ok || !c.registered || len(cmd.Data) < off {
		return cmd
	}
	fs, err := DecodeFields(cmd.Data[off:])
	if err != nil {
		return cmd
	}
	sync := syncTLV(c.lastReceipt)
	merged := false
	for i, f := range fs {
		if f.BMP == 0x06 {
			fs[i].Value = append(append([]byte{}, f.Value...), sync.Value...)
			merged = true
		}
	}
	if !merged {
		fs = append(fs, sync)
	}
	return APDU{Class: cmd.Class, Instr: cmd.Instr, Data: AppendFields(append([]byte{}, cmd.Data[:off]...), fs)}
}

// noteReceipt remembers the receipt number of a Status-Information posgate
// acknowledged: TLV 1F1F if the terminal sent it, else BMP 87.
func (c *Client) noteReceipt(data []byte, info *device.TxInfo) {
	if fs, _ := DecodeFields(data); fs != nil {
		if v, ok := fieldMap(fs)[0x06]; ok {
			if ts, err := DecodeTLVs(v); err == nil {
				if t, ok := findTLV(ts, TagReceiptNumSync); ok && len(t.Value) > 0 && len(t.Value) <= 4 {
					n := 0
					for _, b := range t.Value {
						n = n<<8 | int(b)
					}
					c.lastReceipt = n
					return
				}
			}
		}
	}
	if info.ReceiptNo > 0 {
		c.lastReceipt = info.ReceiptNo
	}
}

// jobEnded records when the terminal was last busy, for the idle poll.
func (c *Client) jobEnded() {
	c.smu.Lock()
	c.lastJobEnd = time.Now()
	c.smu.Unlock()
}
