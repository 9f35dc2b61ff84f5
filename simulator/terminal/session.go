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

// errAborted ends a scenario when the ECR's Abort was honoured.
var errAborted = errors.New("aborted by ecr")

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

// payment runs a sale or a refund.
func (ss *session) payment(ctx context.Context, cmd zvt.APDU, kind Kind) error {
	s := ss.s
	data := cmd.Data
	if kind == Refund {
		if ok, err := ss.checkPassword(ctx, data); !ok {
			return err
		}
		data = data[3:]
	}
	fs, err := zvt.DecodeFields(data)
	if err != nil {
		return ss.tr.Send(ctx, zvt.Nack(0x9A))
	}
	var amount, cc int64 = 0, 978
	for _, f := range fs {
		switch f.BMP {
		case 0x04:
			amount = bcdValue(f.Value)
		case 0x49:
			cc = bcdValue(f.Value)
		}
	}
	if amount <= 0 {
		return ss.tr.Send(ctx, zvt.Nack(0x9A))
	}
	if err := ss.tr.Send(ctx, zvt.Ack()); err != nil {
		return err
	}
	scenario := amount % 100
	if kind != Sale {
		scenario = 0
	}
	aborted, err := ss.status(ctx, 0x0A, s.opts.Step) // insert card
	if err != nil {
		return err
	}
	if s.takeDrop() {
		return simulator.ErrHangup
	}
	switch {
	case scenario == AmountNoResult || scenario == AmountApproveAfter:
		for !aborted {
			if aborted, err = ss.status(ctx, 0x04, s.opts.Step); err != nil {
				return err
			}
		}
		if scenario == AmountNoResult {
			return ss.abortTx(ctx, 0x6C)
		}
	case aborted:
		return ss.abortTx(ctx, 0x6C)
	case scenario == AmountCustomerAbort:
		return ss.abortTx(ctx, 0x6C)
	case scenario == AmountSlow:
		end := time.Now().Add(s.opts.Slow)
		for time.Now().Before(end) {
			if aborted, err = ss.status(ctx, 0x04, min(s.opts.Step, time.Until(end))); err != nil {
				return err
			}
			if aborted {
				return ss.abortTx(ctx, 0x6C)
			}
		}
	default:
		if aborted, err = ss.status(ctx, 0x01, s.opts.Step); err != nil { // watch PIN pad
			return err
		}
		if aborted {
			return ss.abortTx(ctx, 0x6C)
		}
	}
	result := byte(0)
	if scenario == AmountDecline {
		result = 0x05
	}
	e := Entry{Kind: kind, Amount: amount, Currency: cc, Approved: result == 0, Result: result}
	return ss.conclude(ctx, e)
}

// conclude sends the Status-Information, journals the entry only once the
// ECR acknowledged it (the commit rule), prints the receipt and finishes.
func (ss *session) conclude(ctx context.Context, e Entry) error {
	s := ss.s
	now := s.opts.Now()
	s.trace++
	e.Trace = s.trace
	if e.Approved {
		s.receiptNo = s.receiptNo%9999 + 1
		e.ReceiptNo = s.receiptNo
	}
	e.At = now
	info := ss.statusInfo(e, now)
	resp, err := ss.call(ctx, info)
	if err != nil {
		return err
	}
	if !resp.IsAck() {
		// The ECR could not record it: the terminal reverses on its own.
		s.log.Info().Int("receipt_no", e.ReceiptNo).Msg("sim auto-reversal: status information refused")
		return ss.abortTx(ctx, resp.Instr)
	}
	s.journalAdd(e)
	if e.Kind == Reversal {
		s.journalUpdate(func(j []Entry) {
			for i := range j {
				if j[i].ReceiptNo == e.OrigReceipt && j[i].Kind == Sale {
					j[i].Reversed = true
				}
			}
		})
	}
	s.lastInfo = &info
	lines := paymentReceipt(e, s.opts.TerminalID)
	s.lastReceipt = lines
	if err := ss.printLines(ctx, lines); err != nil {
		return err
	}
	if !e.Approved {
		return ss.abortTx(ctx, e.Result)
	}
	return ss.finish(ctx, zvt.Completion(zvt.Field{BMP: 0x27, Value: []byte{0}}, ss.tid()))
}

func (ss *session) statusInfo(e Entry, now time.Time) zvt.APDU {
	fs := []zvt.Field{
		{BMP: 0x27, Value: []byte{e.Result}},
		zvt.BCDField(0x04, e.Amount, 6),
		zvt.BCDField(0x0B, int64(e.Trace), 3),
		zvt.BCDField(0x0C, int64(now.Hour()*10000+now.Minute()*100+now.Second()), 3),
		zvt.BCDField(0x0D, int64(int(now.Month())*100+now.Day()), 2),
		// A test card number in clear, as some terminals send it: the ECR
		// must mask it before it logs or stores anything.
		{BMP: 0x22, Value: []byte{0x67, 0x99, 0x99, 0x89, 0x00, 0x00, 0x00, 0x00, 0x01, 0x9F}},
		ss.tid(),
		zvt.BCDField(0x49, e.Currency, 2),
	}
	if e.ReceiptNo > 0 {
		fs = append(fs, zvt.BCDField(0x87, int64(e.ReceiptNo), 2))
	}
	if e.Kind == Reversal {
		fs = append(fs, zvt.BCDField(0x37, int64(e.OrigTrace), 3))
	}
	fs = append(fs, zvt.Field{BMP: 0x8B, Value: []byte("Girocard")})
	return zvt.StatusInfo(fs...)
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

func (ss *session) reversal(ctx context.Context, cmd zvt.APDU) error {
	s := ss.s
	if ok, err := ss.checkPassword(ctx, cmd.Data); !ok {
		return err
	}
	fs, err := zvt.DecodeFields(cmd.Data[3:])
	if err != nil {
		return ss.tr.Send(ctx, zvt.Nack(0x9A))
	}
	receipt := -1
	for _, f := range fs {
		if f.BMP == 0x87 {
			receipt = int(bcdValue(f.Value))
		}
	}
	if err := ss.tr.Send(ctx, zvt.Ack()); err != nil {
		return err
	}
	if aborted, err := ss.status(ctx, 0x0E, s.opts.Step); err != nil || aborted {
		if err != nil {
			return err
		}
		return ss.abortTx(ctx, 0x6C)
	}
	var orig *Entry
	for _, e := range s.Journal() {
		if e.ReceiptNo == receipt && e.Kind == Sale && e.Approved {
			orig = &e
		}
	}
	switch {
	case orig == nil, orig.Settled:
		return ss.abortTx(ctx, 0xB5) // reversal not possible
	case orig.Reversed:
		return ss.abortTx(ctx, 0xB4) // already reversed
	}
	e := Entry{Kind: Reversal, Amount: orig.Amount, Currency: orig.Currency, Approved: true,
		OrigReceipt: orig.ReceiptNo, OrigTrace: orig.Trace}
	return ss.conclude(ctx, e)
}

func (ss *session) endOfDay(ctx context.Context, cmd zvt.APDU) error {
	s := ss.s
	if ok, err := ss.checkPassword(ctx, cmd.Data); !ok {
		return err
	}
	if err := ss.tr.Send(ctx, zvt.Ack()); err != nil {
		return err
	}
	if _, err := ss.status(ctx, 0x0F, s.opts.Step); err != nil {
		return err
	}
	var total int64
	var n int
	s.journalUpdate(func(j []Entry) {
		for i := range j {
			e := &j[i]
			if e.Settled || !e.Approved {
				continue
			}
			e.Settled = true
			switch {
			case e.Kind == Sale && !e.Reversed:
				total += e.Amount
				n++
			case e.Kind == Refund:
				total -= e.Amount
				n++
			}
		}
	})
	s.eods++
	now := s.opts.Now()
	s.trace++
	info := zvt.StatusInfo(
		zvt.Field{BMP: 0x27, Value: []byte{0}},
		zvt.BCDField(0x04, max(total, 0), 6),
		zvt.BCDField(0x0B, int64(s.trace), 3),
		zvt.BCDField(0x0C, int64(now.Hour()*10000+now.Minute()*100+now.Second()), 3),
		zvt.BCDField(0x0D, int64(int(now.Month())*100+now.Day()), 2),
		ss.tid(),
	)
	resp, err := ss.call(ctx, info)
	if err != nil {
		return err
	}
	if !resp.IsAck() {
		return ss.abortTx(ctx, resp.Instr)
	}
	s.lastInfo = &info
	lines := endOfDayReceipt(s.eods, n, total, s.opts.TerminalID, now)
	s.lastReceipt = lines
	if err := ss.printBlock(ctx, lines); err != nil {
		return err
	}
	return ss.finish(ctx, zvt.Completion(zvt.Field{BMP: 0x27, Value: []byte{0}}, ss.tid()))
}

func (ss *session) repeat(ctx context.Context, cmd zvt.APDU) error {
	s := ss.s
	if ok, err := ss.checkPassword(ctx, cmd.Data); !ok {
		return err
	}
	if err := ss.tr.Send(ctx, zvt.Ack()); err != nil {
		return err
	}
	if s.lastInfo == nil {
		return ss.abortTx(ctx, 0x83)
	}
	if _, err := ss.call(ctx, *s.lastInfo); err != nil {
		return err
	}
	if err := ss.printLines(ctx, s.lastReceipt); err != nil {
		return err
	}
	return ss.finish(ctx, zvt.Completion(zvt.Field{BMP: 0x27, Value: []byte{0}}, ss.tid()))
}

func bcdValue(b []byte) int64 {
	var v int64
	for _, x := range b {
		v = v*100 + int64(x>>4)*10 + int64(x&0x0F)
	}
	return v
}
