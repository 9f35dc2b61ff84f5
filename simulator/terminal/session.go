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

// session is one connection's view: the transport and whether the ECR
// asked to abort while the terminal held master rights.
type session struct {
	s       *Simulator
	tr      zvt.Transport
	abortRq bool
}

// serve answers ECR commands until the line closes or ctx ends.
func (s *Simulator) serve(ctx context.Context, tr zvt.Transport) error {
	ss := &session{s: s, tr: tr}
	for {
		cmd, err := tr.Recv(ctx, time.Now().Add(time.Hour))
		if errors.Is(err, device.ErrTimeout) {
			continue
		}
		if err != nil {
			if errors.Is(err, zvt.ErrTooManyNAKs) {
				continue
			}
			return err
		}
		if err := ss.handle(ctx, cmd); err != nil {
			return err
		}
	}
}

// handle runs one ECR command. Errors end the session.
func (ss *session) handle(ctx context.Context, cmd zvt.APDU) error {
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.abortRq = false
	switch cmd.Command() {
	case zvt.CmdRegistration:
		return ss.register(ctx, cmd)
	case zvt.CmdStatusEnquiry:
		return ss.statusEnquiry(ctx)
	case zvt.CmdLogOff:
		s.setRegistered(false)
		return ss.tr.Send(ctx, zvt.Ack())
	case zvt.CmdAbort: // nothing runs: accept and do nothing
		return ss.tr.Send(ctx, zvt.Ack())
	}
	if !s.isRegistered() {
		return ss.tr.Send(ctx, zvt.Nack(0x6B))
	}
	var err error
	switch cmd.Command() {
	case zvt.CmdAuthorization:
		err = ss.payment(ctx, cmd, Sale)
	case zvt.CmdRefund:
		err = ss.payment(ctx, cmd, Refund)
	case zvt.CmdReversal:
		err = ss.reversal(ctx, cmd)
	case zvt.CmdEndOfDay:
		err = ss.endOfDay(ctx, cmd)
	case zvt.CmdRepeatReceipt:
		err = ss.repeat(ctx, cmd)
	default:
		return ss.tr.Send(ctx, zvt.Nack(0x83))
	}
	if errors.Is(err, simulator.ErrHangup) {
		s.log.Info().Msg("sim dropping the line")
	}
	return err
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

func (ss *session) register(ctx context.Context, cmd zvt.APDU) error {
	if ok, err := ss.checkPassword(ctx, cmd.Data); !ok {
		return err
	}
	if len(cmd.Data) < 4 {
		return ss.tr.Send(ctx, zvt.Nack(0x9A))
	}
	ss.s.config = cmd.Data[3]
	if err := ss.tr.Send(ctx, zvt.Ack()); err != nil {
		return err
	}
	ss.s.setRegistered(true)
	return ss.finish(ctx, zvt.Completion(
		zvt.Field{BMP: 0x19, Value: []byte{0x00}},
		ss.tid(),
	))
}

func (ss *session) statusEnquiry(ctx context.Context) error {
	if err := ss.tr.Send(ctx, zvt.Ack()); err != nil {
		return err
	}
	sw := ss.s.opts.Software
	d := []byte{0xF0 | byte(len(sw)/100%10), 0xF0 | byte(len(sw)/10%10), 0xF0 | byte(len(sw)%10)}
	d = append(d, sw...)
	d = append(d, 0x00) // ready
	return ss.finish(ctx, zvt.APDU{Class: 0x06, Instr: 0x0F, Data: d})
}

func (ss *session) tid() zvt.Field {
	var v int64
	fmt.Sscan(ss.s.opts.TerminalID, &v)
	return zvt.BCDField(0x29, v, 4)
}

// call sends a PT message and waits for the ECR's answer. An Abort that
// arrives instead (the ECR spoke first) is acknowledged and remembered.
func (ss *session) call(ctx context.Context, a zvt.APDU) (zvt.APDU, error) {
	if err := ss.tr.Send(ctx, a); err != nil {
		return zvt.APDU{}, err
	}
	for {
		resp, err := ss.tr.Recv(ctx, time.Now().Add(ss.s.opts.T3))
		if err != nil {
			return zvt.APDU{}, fmt.Errorf("wait for answer to %s: %w", zvt.CommandName(a), err)
		}
		if resp.Command() == zvt.CmdAbort {
			ss.abortRq = true
			if err := ss.tr.Send(ctx, zvt.Ack()); err != nil {
				return zvt.APDU{}, err
			}
			continue
		}
		return resp, nil
	}
}

// finish sends the final Completion or Abort and gives master rights back.
func (ss *session) finish(ctx context.Context, a zvt.APDU) error {
	_, err := ss.call(ctx, a)
	return err
}

// status sends one intermediate status, then listens for an Abort for up
// to d. It reports whether the ECR asked to abort (now or before).
func (ss *session) status(ctx context.Context, code byte, d time.Duration) (bool, error) {
	if ss.s.config&0x08 != 0 {
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
		if cmd.Command() != zvt.CmdAbort {
			// Only Abort is allowed while the terminal is master.
			if err := ss.tr.Send(ctx, zvt.Nack(0x83)); err != nil {
				return false, err
			}
			continue
		}
		ss.abortRq = true
		if err := ss.tr.Send(ctx, zvt.Ack()); err != nil {
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

// printLines sends a payment receipt as Print Lines, the last one marked.
func (ss *session) printLines(ctx context.Context, lines []string) error {
	ss.s.render("customer", lines)
	// Config bit 1: the ECR prints payment receipts; bit 7: as print lines.
	if ss.s.config&0x82 != 0x82 {
		return nil
	}
	for i, l := range lines {
		attr := byte(0x00)
		if i == len(lines)-1 {
			attr = 0x81 // top bit set (and not 0x80): the receipt's last line
		}
		resp, err := ss.call(ctx, zvt.PrintLine(attr, l))
		if err != nil {
			return err
		}
		if !resp.IsAck() {
			return nil // printer not ready: the ECR prints nothing more
		}
	}
	return nil
}

// printBlock sends an administration receipt as one Print Text-Block.
func (ss *session) printBlock(ctx context.Context, lines []string) error {
	ss.s.render("administration", lines)
	// Config bit 2: the ECR prints administration receipts; bit 7: the
	// terminal sends them.
	if ss.s.config&0x84 != 0x84 {
		return nil
	}
	_, err := ss.call(ctx, zvt.PrintTextBlock(3, lines))
	return err
}
