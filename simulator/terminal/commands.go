package terminal

import (
	"context"
	"time"

	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
)

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
