package zvt

// Message sequence ids, TLV 1F73 (PA00P015 chapter 5). When the ECR
// registers with 1F73 = 000000 and the terminal echoes it in the
// Completion, both sides number every message from 000001 on: the ECR's
// command carries the next id and the terminal echoes it in 80 00 08 06 06
// 1F 73 03 <id>; each terminal message carries the next id and the ECR
// echoes it the same way. After 999999 comes 000001. A duplicate or a gap
// then shows in the ids. posgate asks for it only with
// Options.SequenceIDs; a terminal that does not echo it turns it off.

// TagMsgSeqID is the message sequence id tag.
const TagMsgSeqID = 0x1F73

// nextSeq returns the id after n.
func nextSeq(n int) int { return n%999999 + 1 }

// SeqTLV is the TLV object 1F73 = id (3 bytes BCD), for a BMP 06.
func SeqTLV(id int) []byte { return AppendTLV(nil, TLV{Tag: TagMsgSeqID, Value: bcd(int64(id), 3)}) }

// WithTLV adds tlv (encoded TLV objects) to the BMP 06 of cmd's data, after a
// fixed prefix of off bytes, or appends a BMP 06 holding it. A command
// whose BMPs do not parse is returned unchanged.
func WithTLV(cmd APDU, off int, tlv []byte) APDU {
	if len(cmd.Data) < off {
		return cmd
	}
	fs, err := DecodeFields(cmd.Data[off:])
	if err != nil {
		return cmd
	}
	merged := false
	for i, f := range fs {
		if f.BMP == 0x06 && !merged {
			fs[i].Value = append(append([]byte{}, f.Value...), tlv...)
			merged = true
		}
	}
	if !merged {
		fs = append(fs, Field{BMP: 0x06, Value: tlv})
	}
	return APDU{Class: cmd.Class, Instr: cmd.Instr, Data: AppendFields(append([]byte{}, cmd.Data[:off]...), fs)}
}

// seqCommands take a sequence id, with the length of their fixed prefix.
var seqCommands = map[uint16]int{
	CmdRegistration: 6, CmdAuthorization: 0, CmdPreAuth: 0, CmdPartialReversal: 0, CmdBookTotal: 0,
	CmdPreAuthReversal: 0, CmdReversal: 3, CmdRefund: 3, CmdEndOfDay: 3, CmdRepeatReceipt: 3,
	CmdStatusEnquiry: 3, CmdDiagnosis: 0,
}

// SeqIDOf returns the sequence id a message carries in its TLV container,
// if any: after the fixed part of 04 FF (status, timeout) and 06 1E
// (result code), at the start of 04 0F, 06 0F, 06 D3 and the answers.
func SeqIDOf(a APDU) (int, bool) {
	off := 0
	switch {
	case a.Command() == CmdIntermediate:
		off = 2
	case a.Command() == CmdAbortPT:
		off = 1
	case a.Class == 0x80 || a.Class == 0x84:
	case a.Command() == CmdStatusInfo, a.Command() == CmdCompletion, a.Command() == CmdPrintTextBlock:
	default:
		if o, ok := seqCommands[a.Command()]; ok {
			off = o
		} else {
			return 0, false
		}
	}
	id, ok := seqAt(a.Data, off)
	if !ok && a.Command() == CmdIntermediate {
		// §5.1's own example sends 04 FF 09 17 06 06 1F 73 …, with no
		// <timeout> before the TLV container that §3.7 asks for.
		id, ok = seqAt(a.Data, 1)
	}
	return id, ok
}

func seqAt(data []byte, off int) (int, bool) {
	if len(data) <= off {
		return 0, false
	}
	fs, _ := DecodeFields(data[off:])
	v, ok := fieldMap(fs)[0x06]
	if !ok {
		return 0, false
	}
	ts, err := DecodeTLVs(v)
	if err != nil {
		return 0, false
	}
	t, ok := findTLV(ts, TagMsgSeqID)
	if !ok || len(t.Value) != 3 {
		return 0, false
	}
	n, err := unbcd(t.Value)
	return int(n), err == nil
}

// AckSeq is 80 00 echoing a sequence id: 80 00 08 06 06 1F 73 03 <id>.
func AckSeq(id int) APDU {
	return APDU{Class: 0x80, Instr: 0x00, Data: AppendField(nil, Field{BMP: 0x06, Value: SeqTLV(id)})}
}

// ackFor answers a terminal message: with its sequence id echoed when ids
// are on. Caller runs on the port's goroutine.
func (c *Client) ackFor(msg APDU) APDU {
	if !c.seqOn {
		return Ack()
	}
	if id, ok := SeqIDOf(msg); ok {
		c.seq = id
		return AckSeq(id)
	}
	return Ack()
}

// fillSeq numbers an outgoing command when ids are on (and asks for them
// in a Registration when Options.SequenceIDs is set). Caller runs on the
// port's goroutine.
func (c *Client) fillSeq(cmd APDU) APDU {
	off, ok := seqCommands[cmd.Command()]
	if !ok {
		return cmd
	}
	if cmd.Command() == CmdRegistration {
		c.seqOn = false
		if !c.opts.SequenceIDs || len(cmd.Data) < off {
			return cmd
		}
		return WithTLV(cmd, off, SeqTLV(0))
	}
	if !c.seqOn {
		return cmd
	}
	c.seq = nextSeq(c.seq)
	return WithTLV(cmd, off, SeqTLV(c.seq))
}
