package terminal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
)

// errYielded means the ECR sent a command instead of answering the
// terminal's message: it has taken master rights back (it gave up waiting,
// or it restarted). The running command ends there, without committing
// anything the ECR did not acknowledge (PA00P015 §2.2.8), and the new
// command is served next.
var errYielded = errors.New("sim: the ECR sent a command instead of an answer")

// session is one connection's view: the transport, whether the ECR asked
// to abort while the terminal held master rights, and a command that
// arrived while the terminal waited for an answer.
type session struct {
	s       *Simulator
	tr      zvt.Transport
	abortRq bool
	pending *zvt.APDU
	cmd     zvt.APDU // the command being served
}

// ack accepts the command being served: 80 00 00, or with its sequence id
// echoed when ids are on (chapter 5).
func (ss *session) ack(ctx context.Context) error {
	if ss.s.reg.seq {
		if id, ok := zvt.SeqIDOf(ss.cmd); ok {
			ss.s.seq = id
			return ss.tr.Send(ctx, zvt.AckSeq(id))
		}
	}
	return ss.tr.Send(ctx, zvt.Ack())
}

// numbered gives a terminal message the next sequence id when ids are on.
// Print Line has no TLV container and goes unnumbered.
func (ss *session) numbered(a zvt.APDU) zvt.APDU {
	s := ss.s
	if !s.reg.seq {
		return a
	}
	off := 0
	switch a.Command() {
	case zvt.CmdIntermediate:
		if len(a.Data) == 1 {
			a = zvt.APDU{Class: a.Class, Instr: a.Instr, Data: []byte{a.Data[0], 0x03}} // §3.7: <timeout> before TLV
		}
		off = 2
	case zvt.CmdAbortPT:
		off = 1
	case zvt.CmdStatusInfo, zvt.CmdCompletion, zvt.CmdPrintTextBlock:
	default:
		return a
	}
	if a.Command() == zvt.CmdCompletion && len(a.Data) > 0 {
		if _, err := zvt.DecodeFields(a.Data); err != nil {
			return a // the Status-Enquiry Completion: no BMPs to add to
		}
	}
	s.seq = s.seq%999999 + 1
	return zvt.WithTLV(a, off, zvt.SeqTLV(s.seq))
}

// serve answers ECR commands until the line closes or ctx ends.
func (s *Simulator) serve(ctx context.Context, tr zvt.Transport) error {
	ss := &session{s: s, tr: tr}
	for {
		var cmd zvt.APDU
		if ss.pending != nil {
			cmd, ss.pending = *ss.pending, nil
		} else {
			var err error
			cmd, err = tr.Recv(ctx, time.Now().Add(time.Hour))
			if errors.Is(err, device.ErrTimeout) {
				continue
			}
			if err != nil {
				if errors.Is(err, zvt.ErrTooManyNAKs) {
					continue
				}
				return err
			}
		}
		if err := ss.handle(ctx, cmd); err != nil {
			return err
		}
	}
}

// handle runs one ECR command. Errors end the session; a command the ECR
// left unanswered (T3, or no ACK on the serial line) or interrupted with a
// new command ends only that command.
func (ss *session) handle(ctx context.Context, cmd zvt.APDU) error {
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.abortRq = false
	ss.cmd = cmd
	if cmd.Class == 0x80 || cmd.Class == 0x84 {
		// An answer nobody waits for (a late acknowledgement): nothing to do.
		s.log.Debug().Str("apdu", zvt.Describe(cmd)).Msg("sim ignores a stray answer")
		return nil
	}
	err := ss.dispatch(ctx, cmd)
	switch {
	case err == nil:
	case errors.Is(err, errYielded):
		s.log.Info().Err(err).Msg("sim ends the command: the ECR took master rights back")
		err = nil
	case errors.Is(err, device.ErrTimeout), errors.Is(err, zvt.ErrNoAck):
		s.log.Info().Err(err).Msg("sim ends the command: the ECR did not answer")
		err = nil
	case errors.Is(err, simulator.ErrHangup):
		s.log.Info().Msg("sim dropping the line")
	}
	return err
}

func (ss *session) dispatch(ctx context.Context, cmd zvt.APDU) error {
	s := ss.s
	if q, ok := s.quirkFor(cmd); ok {
		return ss.tr.Send(ctx, q)
	}
	switch cmd.Command() {
	case zvt.CmdRegistration:
		return ss.register(ctx, cmd)
	case zvt.CmdStatusEnquiry:
		return ss.statusEnquiry(ctx)
	case zvt.CmdLogOff:
		s.logOff()
		return ss.ack(ctx)
	case zvt.CmdAbort: // nothing runs: accept and do nothing
		return ss.ack(ctx)
	}
	if !s.isRegistered() {
		return ss.tr.Send(ctx, zvt.Nack(0x6B))
	}
	switch cmd.Command() {
	case zvt.CmdAuthorization:
		return ss.payment(ctx, cmd, Sale)
	case zvt.CmdPreAuth:
		return ss.payment(ctx, cmd, PreAuth)
	case zvt.CmdRefund:
		return ss.payment(ctx, cmd, Refund)
	case zvt.CmdReversal:
		return ss.reversal(ctx, cmd)
	case zvt.CmdPartialReversal, zvt.CmdBookTotal, zvt.CmdPreAuthReversal:
		return ss.booking(ctx, cmd)
	case zvt.CmdEndOfDay:
		return ss.endOfDay(ctx, cmd, true)
	case zvt.CmdTurnoverTotals:
		return ss.endOfDay(ctx, cmd, false)
	case zvt.CmdRepeatReceipt:
		return ss.repeat(ctx, cmd)
	case zvt.CmdDiagnosis:
		return ss.diagnosis(ctx)
	case zvt.CmdReadCard:
		return ss.readCard(ctx, cmd)
	}
	return ss.tr.Send(ctx, zvt.Nack(0x83))
}

// checkPassword validates the 3-byte password prefix; it answers 84 9A
// and reports false when it is wrong.
func (ss *session) checkPassword(ctx context.Context, data []byte) (bool, error) {
	want, _ := zvt.Password(ss.s.opts.Password)
	if len(data) < 3 || string(data[:3]) != string(want) {
		return false, ss.tr.Send(ctx, zvt.Nack(0x9A))
	}
	return true, nil
}

// register serves Registration 06 00 (PA00P015 §2.1): it remembers the
// config byte, whether the ECR speaks TLV (BMP 06 sent) and which commands
// it permits (tag 26), and completes with 06 0F 19 29 [49] [06].
func (ss *session) register(ctx context.Context, cmd zvt.APDU) error {
	s := ss.s
	if ok, err := ss.checkPassword(ctx, cmd.Data); !ok {
		return err
	}
	if len(cmd.Data) < 4 {
		return ss.tr.Send(ctx, zvt.Nack(0x9A))
	}
	reg := registration{config: cmd.Data[3]}
	var cc []byte
	if len(cmd.Data) >= 6 {
		cc = cmd.Data[4:6]
		if v := bcdValue(cc); v != 978 && v != s.opts.currency() {
			return ss.tr.Send(ctx, zvt.APDU{Class: 0x84, Instr: 0x1E, Data: append([]byte{0x6F}, cc...)})
		}
		fs, err := zvt.DecodeFields(cmd.Data[6:])
		if err != nil {
			return ss.tr.Send(ctx, zvt.Nack(0x9A))
		}
		for _, f := range fs {
			if f.BMP != 0x06 {
				continue
			}
			reg.tlv = true
			ts, err := zvt.DecodeTLVs(f.Value)
			if err != nil {
				return ss.tr.Send(ctx, zvt.Nack(0x9A))
			}
			for _, t := range ts {
				if t.Tag == zvt.TagMsgSeqID && s.opts.SequenceIDs {
					reg.seq = true
				}
				if t.Tag != zvt.TagPermittedCmds {
					continue
				}
				reg.permitted = map[uint16]bool{}
				inner, _ := zvt.DecodeTLVs(t.Value)
				for _, c := range inner {
					if c.Tag == 0x0A && len(c.Value) == 2 {
						reg.permitted[uint16(c.Value[0])<<8|uint16(c.Value[1])] = true
					}
				}
			}
		}
	}
	if err := ss.ack(ctx); err != nil {
		return err
	}
	s.reg = reg
	s.setRegistered(true)
	status := byte(0x00)
	if s.needDiag {
		status |= 0x02 // Diagnosis necessary (§2.1 Table 3)
	}
	fs := []zvt.Field{{BMP: 0x19, Value: []byte{status}}, ss.tid()}
	if cc != nil {
		fs = append(fs, zvt.Field{BMP: 0x49, Value: cc})
	}
	var tlv []byte
	if reg.permitted != nil {
		// Echo what the terminal will use of the permitted list (§5.1
		// example): 06 D3 if the ECR asked for text blocks.
		var list []byte
		if reg.permitted[zvt.CmdPrintTextBlock] {
			list = zvt.AppendTLV(list, zvt.TLV{Tag: 0x0A, Value: []byte{0x06, 0xD3}})
		}
		tlv = zvt.AppendTLV(tlv, zvt.TLV{Tag: zvt.TagPermittedCmds, Value: list})
	}
	if reg.seq {
		tlv = append(tlv, zvt.SeqTLV(0)...) // §5.1: the echo agrees to sequence ids
	}
	if tlv != nil {
		fs = append(fs, zvt.Field{BMP: 0x06, Value: tlv})
	}
	// Ids start with the ECR's first command after this Completion.
	s.reg.seq, s.seq = false, 0
	err := ss.finish(ctx, zvt.Completion(fs...))
	s.reg.seq = reg.seq
	return err
}

// statusEnquiry serves 05 01 (§2.56): Completion with the software
// version (LLLVAR) and the terminal status.
func (ss *session) statusEnquiry(ctx context.Context) error {
	if err := ss.ack(ctx); err != nil {
		return err
	}
	sw := ss.s.opts.Software
	d := []byte{0xF0 | byte(len(sw)/100%10), 0xF0 | byte(len(sw)/10%10), 0xF0 | byte(len(sw)%10)}
	d = append(d, sw...)
	code := byte(0x00) // ready
	if ss.s.needDiag {
		code = 0xC2 // diagnosis required (chapter 11)
	}
	d = append(d, code)
	return ss.finish(ctx, zvt.APDU{Class: 0x06, Instr: 0x0F, Data: d})
}

// diagnosis serves 06 70 (§2.17): an intermediate status while it talks
// to the host, then Completion 06 0F 00.
func (ss *session) diagnosis(ctx context.Context) error {
	if err := ss.ack(ctx); err != nil {
		return err
	}
	if _, err := ss.status(ctx, 0x04, ss.s.opts.Step); err != nil {
		return err
	}
	ss.s.needDiag = false
	return ss.finish(ctx, zvt.Completion())
}

func (ss *session) tid() zvt.Field {
	var v int64
	fmt.Sscan(ss.s.opts.TerminalID, &v)
	return zvt.BCDField(0x29, v, 4)
}

// call sends a PT message and waits for the ECR's answer. An Abort that
// arrives instead (the ECR spoke first) is acknowledged and remembered;
// any other command ends the running one (errYielded) and is kept for
// serve.
func (ss *session) call(ctx context.Context, a zvt.APDU) (zvt.APDU, error) {
	a = ss.numbered(a)
	if err := ss.tr.Send(ctx, a); err != nil {
		return zvt.APDU{}, err
	}
	for {
		resp, err := ss.tr.Recv(ctx, time.Now().Add(ss.s.opts.T3))
		if err != nil {
			return zvt.APDU{}, fmt.Errorf("wait for answer to %s: %w", zvt.CommandName(a), err)
		}
		switch {
		case resp.Class == 0x80 || resp.Class == 0x84:
			return resp, nil
		case resp.Command() == zvt.CmdAbort:
			ss.abortRq = true
			if err := ss.ack(ctx); err != nil {
				return zvt.APDU{}, err
			}
		default:
			ss.pending = &resp
			return zvt.APDU{}, fmt.Errorf("%w: %s while waiting for the answer to %s", errYielded, zvt.CommandName(resp), zvt.CommandName(a))
		}
	}
}

// finish sends the final Completion or Abort and gives master rights back.
// A new command in place of the acknowledgement is served next: master
// rights went back to the ECR with the Completion either way (§2.2.9).
func (ss *session) finish(ctx context.Context, a zvt.APDU) error {
	_, err := ss.call(ctx, a)
	if errors.Is(err, errYielded) {
		return nil
	}
	return err
}

// status sends one intermediate status, then listens for an Abort for up
// to d. It reports whether the ECR asked to abort (now or before).
func (ss *session) status(ctx context.Context, code byte, d time.Duration) (bool, error) {
	if ss.s.reg.config&0x08 != 0 {
		if _, err := ss.call(ctx, zvt.Intermediate(code)); err != nil {
			return false, err
		}
	}
	deadline := time.Now().Add(d)
	for !ss.abortRq && time.Now().Before(deadline) {
		cmd, err := ss.tr.Recv(ctx, deadline)
		if errors.Is(err, device.ErrTimeout) {
			break
		}
		if err != nil {
			return false, err
		}
		if cmd.Class == 0x80 || cmd.Class == 0x84 {
			continue // a late answer
		}
		if cmd.Command() != zvt.CmdAbort {
			// Only Abort may come while the terminal is master (§2.23):
			// anything else is refused, "function not possible", and the
			// transaction goes on.
			if err := ss.tr.Send(ctx, zvt.Nack(0x83)); err != nil {
				return false, err
			}
			continue
		}
		ss.abortRq = true
		if err := ss.ack(ctx); err != nil {
			return false, err
		}
	}
	if ss.abortRq && ss.s.ignoresAbort() {
		ss.abortRq = false
		return false, nil
	}
	return ss.abortRq, nil
}

// abortTx ends the running command with 06 1E code.
func (ss *session) abortTx(ctx context.Context, code byte) error {
	return ss.finish(ctx, zvt.AbortPT(code))
}

// printReceipt sends a receipt to the ECR when the registration asked for
// it (§2.1 Table 1: bit 1 payment receipts, bit 2 administration receipts,
// bit 7 the PT sends them), as one Print Text-Block if the ECR permitted
// 06 D3 in its tag 26 list (§3.6), otherwise as Print Lines with the last
// one marked. It reports false when the ECR's printer refused.
func (ss *session) printReceipt(ctx context.Context, admin bool, receiptType byte, lines []string) (bool, error) {
	kind := map[byte]string{1: "merchant", 2: "customer", 3: "administration"}[receiptType]
	ss.s.render(kind, lines)
	want := byte(0x82)
	if admin {
		want = 0x84
	}
	if ss.s.reg.config&want != want {
		return true, nil // the ECR compiles receipts itself, or the PT prints them
	}
	if ss.s.reg.permitted[zvt.CmdPrintTextBlock] && !ss.s.quirk(QuirkNoTextBlock) {
		resp, err := ss.call(ctx, zvt.PrintTextBlock(receiptType, lines))
		return err == nil && resp.IsAck(), err
	}
	for i, l := range lines {
		attr := byte(0x00)
		if i == len(lines)-1 {
			attr = 0x81 // top bit set (and not 0x80): the receipt's last line
		}
		resp, err := ss.call(ctx, zvt.PrintLine(attr, l))
		if err != nil {
			return false, err
		}
		if !resp.IsAck() {
			return false, nil // printer not ready: the ECR prints nothing more
		}
	}
	return true, nil
}
