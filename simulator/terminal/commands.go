package terminal

import (
	"context"
	"errors"
	"time"

	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
)

// txRequest is what a transaction command asked for.
type txRequest struct {
	amount     int64
	cc         int64
	ccSent     bool   // BMP 49 was sent: the Status-Information carries it back (§3.1.1)
	maxSI      int    // BMP 02: how often the ECR may answer 84 9C; -1 = no limit
	receiptNo  int    // BMP 87, -1 if absent
	sync       []byte // TLV 1F1F, nil if absent (chapter 4)
	syncTagged bool
}

// parseTx reads the BMPs of a transaction command after its password.
func parseTx(data []byte) (txRequest, error) {
	rq := txRequest{cc: 978, maxSI: -1, receiptNo: -1}
	fs, err := zvt.DecodeFields(data)
	if err != nil {
		return rq, err
	}
	for _, f := range fs {
		switch f.BMP {
		case 0x04:
			rq.amount = bcdValue(f.Value)
		case 0x49:
			rq.cc, rq.ccSent = bcdValue(f.Value), true
		case 0x02:
			rq.maxSI = int(f.Value[0])
		case 0x87:
			rq.receiptNo = int(bcdValue(f.Value))
		case 0x06:
			ts, err := zvt.DecodeTLVs(f.Value)
			if err != nil {
				return rq, err
			}
			for _, t := range ts {
				if t.Tag == zvt.TagReceiptNumSync {
					rq.sync, rq.syncTagged = t.Value, true
				}
			}
		}
	}
	return rq, nil
}

// syncReceipt applies the ECR's receipt-number mirror (TLV 1F1F, PA00P015
// chapter 4): one behind the terminal's last receipt means the ECR never
// got the last transaction, so the terminal reverses it implicitly and
// reuses its receipt number; anything else is ignored.
func (ss *session) syncReceipt(rq txRequest) {
	s := ss.s
	if !rq.syncTagged || len(rq.sync) == 0 || s.receiptNo == 0 {
		return
	}
	var ecr int
	for _, b := range rq.sync {
		ecr = ecr<<8 | int(b)
	}
	if ecr != s.receiptNo-1 && !(s.receiptNo == 1 && ecr == 9999) {
		return
	}
	last := s.receiptNo
	s.journalUpdate(func(j []Entry) {
		for i := range j {
			if j[i].ReceiptNo == last && j[i].Approved && !j[i].Settled && !j[i].Reversed {
				j[i].Reversed = true
				s.log.Info().Int("receipt_no", last).Msg("sim implicit reversal: the ECR missed the last transaction")
			}
		}
	})
	s.receiptNo = ecr
}

// payment runs a sale (06 01), a pre-authorisation (06 22) or a refund
// (06 31, with a password).
func (ss *session) payment(ctx context.Context, cmd zvt.APDU, kind Kind) error {
	s := ss.s
	data := cmd.Data
	if kind == Refund {
		if ok, err := ss.checkPassword(ctx, data); !ok {
			return err
		}
		data = data[3:]
	}
	rq, err := parseTx(data)
	if err != nil || rq.amount <= 0 {
		return ss.tr.Send(ctx, zvt.Nack(0x9A))
	}
	if err := ss.ack(ctx); err != nil {
		return err
	}
	ss.syncReceipt(rq)
	scenario := rq.amount % 100
	if kind == Refund {
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
	e := Entry{Kind: kind, Amount: rq.amount, Currency: rq.cc, Approved: result == 0, Result: result}
	return ss.conclude(ctx, e, rq)
}

// conclude sends the Status-Information, journals the entry only once the
// ECR acknowledged it (the commit rule, §2.2.8), prints the receipt and
// finishes: 06 0F 00 on success (§2.2.9), 06 1E <result> otherwise.
func (ss *session) conclude(ctx context.Context, e Entry, rq txRequest) error {
	s := ss.s
	now := s.opts.Now()
	s.trace++
	e.Trace = s.trace
	if e.Approved {
		s.receiptNo = s.receiptNo%9999 + 1
		e.ReceiptNo = s.receiptNo
	}
	e.At = now
	info := ss.statusInfo(e, now, rq.ccSent)
	resp, over, err := ss.sendStatusInfo(ctx, info, rq.maxSI)
	switch {
	case err != nil:
		return err
	case over:
		// Past <max. status-infos> (§2.2.6) the PT reverses.
		s.log.Info().Int("receipt_no", e.ReceiptNo).Msg("sim auto-reversal: too many 84 9C")
		if _, err := ss.call(ctx, zvt.StatusInfo(zvt.Field{BMP: 0x27, Value: []byte{0x6C}})); err != nil {
			return err
		}
		return ss.abortTx(ctx, 0x6C)
	case !resp.IsAck():
		// The ECR could not record it: the terminal reverses on its own.
		s.log.Info().Int("receipt_no", e.ReceiptNo).Msg("sim auto-reversal: status information refused")
		return ss.abortTx(ctx, resp.Instr)
	}
	s.journalAdd(e)
	switch e.Kind {
	case Reversal:
		s.journalUpdate(func(j []Entry) {
			for i := range j {
				if j[i].ReceiptNo == e.OrigReceipt && j[i].Kind == Sale {
					j[i].Reversed = true
				}
			}
		})
	case Booking, Release:
		s.journalUpdate(func(j []Entry) {
			for i := range j {
				if j[i].ReceiptNo == e.OrigReceipt && j[i].Kind == PreAuth {
					j[i].Closed = true
				}
			}
		})
	}
	s.lastInfo = &info
	lines := paymentReceipt(e, s.opts.TerminalID)
	s.lastReceipt, s.lastAdmin = lines, false
	// No receipt for a successful pre-authorisation (§2.2.7).
	if !(e.Kind == PreAuth && e.Approved) {
		if _, err := ss.printReceipt(ctx, false, 2, lines); err != nil {
			return err
		}
	}
	if !e.Approved {
		return ss.abortTx(ctx, e.Result)
	}
	return ss.finish(ctx, zvt.Completion())
}

// maxRepeatLater bounds how often a Status-Information is sent again
// after 84 9C when the command set no <max. status-infos> (BMP 02): the
// spec leaves that to the PT.
const maxRepeatLater = 10

// sendStatusInfo sends a Status-Information and sends it again, after
// Options.Repoll (2 s), for as long as the ECR answers 84 9C 00 ("repeat
// later": chapter 3.1's note applies to every 04 0F, §2.2.6 bounds it by
// <max. status-infos>, maxSI, -1 if not sent). over reports the ECR asked
// once more than allowed; otherwise resp is its other answer.
func (ss *session) sendStatusInfo(ctx context.Context, info zvt.APDU, maxSI int) (resp zvt.APDU, over bool, err error) {
	if maxSI < 0 {
		maxSI = maxRepeatLater
	}
	for n := 1; ; n++ {
		if resp, err = ss.call(ctx, info); err != nil {
			return resp, false, err
		}
		if resp.Class != 0x84 || resp.Instr != 0x9C {
			return resp, false, nil
		}
		if n > maxSI {
			return resp, true, nil
		}
		select {
		case <-ctx.Done():
			return resp, false, ctx.Err()
		case <-time.After(ss.s.opts.Repoll):
		}
	}
}

// statusInfo builds the 04 0F after a transaction (§3.1.1).
func (ss *session) statusInfo(e Entry, now time.Time, withCC bool) zvt.APDU {
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
	}
	if withCC {
		fs = append(fs, zvt.BCDField(0x49, e.Currency, 2))
	}
	if e.ReceiptNo > 0 {
		fs = append(fs, zvt.BCDField(0x87, int64(e.ReceiptNo), 2))
	}
	if e.Kind == Reversal {
		fs = append(fs, zvt.BCDField(0x37, int64(e.OrigTrace), 3))
	}
	fs = append(fs, zvt.Field{BMP: 0x8B, Value: []byte("Girocard\x00")}) // LLVAR, null-terminated
	if (ss.s.reg.tlv || ss.s.quirk(QuirkTLVUnasked)) && e.ReceiptNo > 0 {
		// The receipt number for the ECR to mirror (TLV 1F1F, chapter 4),
		// only to an ECR that registered with a TLV container.
		fs = append(fs, zvt.Field{BMP: 0x06, Value: zvt.AppendTLV(nil, zvt.TLV{
			Tag: zvt.TagReceiptNumSync, Value: []byte{byte(e.ReceiptNo >> 8), byte(e.ReceiptNo)}})})
	}
	return zvt.StatusInfo(fs...)
}

// reversal serves 06 30 (§2.9): <password> 87<receipt-no>.
func (ss *session) reversal(ctx context.Context, cmd zvt.APDU) error {
	s := ss.s
	if ok, err := ss.checkPassword(ctx, cmd.Data); !ok {
		return err
	}
	rq, err := parseTx(cmd.Data[3:])
	if err != nil || rq.receiptNo < 0 {
		return ss.tr.Send(ctx, zvt.Nack(0x9A))
	}
	if err := ss.ack(ctx); err != nil {
		return err
	}
	ss.syncReceipt(rq)
	if aborted, err := ss.status(ctx, 0x0E, s.opts.Step); err != nil || aborted {
		if err != nil {
			return err
		}
		return ss.abortTx(ctx, 0x6C)
	}
	var orig *Entry
	for _, e := range s.Journal() {
		if e.ReceiptNo == rq.receiptNo && e.Kind == Sale && e.Approved {
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
	rq.cc = orig.Currency
	return ss.conclude(ctx, e, rq)
}

// booking serves what ends a reservation: Partial-Reversal 06 23 (the
// unused amount, §2.10), Book Total 06 24 (the used amount, §2.13) and
// Pre-Authorisation Reversal 06 25 (all of it, §2.14). The 13.08 text
// gives them no password; a leading password, as older revisions had, is
// accepted too.
func (ss *session) booking(ctx context.Context, cmd zvt.APDU) error {
	s := ss.s
	data := cmd.Data
	if len(data) >= 3 && data[0] != 0x87 {
		if ok, err := ss.checkPassword(ctx, data); !ok {
			return err
		}
		data = data[3:]
	}
	rq, err := parseTx(data)
	if err != nil || rq.receiptNo < 0 {
		return ss.tr.Send(ctx, zvt.Nack(0x9A))
	}
	if err := ss.ack(ctx); err != nil {
		return err
	}
	ss.syncReceipt(rq)
	if aborted, err := ss.status(ctx, 0x04, s.opts.Step); err != nil || aborted {
		if err != nil {
			return err
		}
		return ss.abortTx(ctx, 0x6C)
	}
	var orig *Entry
	for _, e := range s.Journal() {
		if e.ReceiptNo == rq.receiptNo && e.Kind == PreAuth && e.Approved {
			orig = &e
		}
	}
	switch {
	case orig == nil, orig.Settled:
		return ss.abortTx(ctx, 0xB5)
	case orig.Closed:
		return ss.abortTx(ctx, 0xB4)
	}
	e := Entry{Kind: Booking, Currency: orig.Currency, Approved: true, OrigReceipt: orig.ReceiptNo, OrigTrace: orig.Trace}
	switch cmd.Command() {
	case zvt.CmdBookTotal:
		e.Amount = orig.Amount
		if rq.amount > 0 {
			e.Amount = rq.amount
		}
	case zvt.CmdPartialReversal:
		e.Amount = orig.Amount - rq.amount
	case zvt.CmdPreAuthReversal:
		e.Kind, e.Amount = Release, orig.Amount
	}
	if e.Amount < 0 || e.Amount > orig.Amount {
		return ss.abortTx(ctx, 0xC3) // more than was reserved
	}
	rq.cc = orig.Currency
	return ss.conclude(ctx, e, rq)
}

// endOfDay serves End-of-Day 06 50 (§2.16; settle) and Send Turnover
// Totals 06 10 (§2.43; the same totals, nothing settled, no receipt).
func (ss *session) endOfDay(ctx context.Context, cmd zvt.APDU, settle bool) error {
	s := ss.s
	if ok, err := ss.checkPassword(ctx, cmd.Data); !ok {
		return err
	}
	if settle {
		if rq, err := parseTx(cmd.Data[3:]); err == nil {
			ss.syncReceipt(rq)
		}
	}
	if err := ss.ack(ctx); err != nil {
		return err
	}
	if _, err := ss.status(ctx, 0x0F, s.opts.Step); err != nil {
		return err
	}
	var total int64
	var n int
	var settled []int
	s.journalUpdate(func(j []Entry) {
		for i := range j {
			e := &j[i]
			if e.Settled || !e.Approved {
				continue
			}
			switch {
			case e.Kind == Sale && !e.Reversed, e.Kind == Booking:
				total += e.Amount
				n++
			case e.Kind == Refund:
				total -= e.Amount
				n++
			}
			if settle && e.Kind != PreAuth {
				settled = append(settled, i)
			}
		}
	})
	now := s.opts.Now()
	s.trace++
	// §3.1.3: 27 04 0B 0C 0D, no terminal id and no currency (the ECR sent
	// none).
	info := zvt.StatusInfo(
		zvt.Field{BMP: 0x27, Value: []byte{0}},
		zvt.BCDField(0x04, max(total, 0), 6),
		zvt.BCDField(0x0B, int64(s.trace), 3),
		zvt.BCDField(0x0C, int64(now.Hour()*10000+now.Minute()*100+now.Second()), 3),
		zvt.BCDField(0x0D, int64(int(now.Month())*100+now.Day()), 2),
	)
	// The ECR may ask for the totals again later (84 9C); a refusal, or
	// too many of those, settles nothing.
	resp, over, err := ss.sendStatusInfo(ctx, info, -1)
	switch {
	case err != nil:
		return err
	case over, !resp.IsAck():
		return ss.abortTx(ctx, resp.Instr)
	}
	if !settle {
		return ss.finish(ctx, zvt.Completion())
	}
	s.journalUpdate(func(j []Entry) {
		for _, i := range settled {
			j[i].Settled = true
		}
	})
	s.eods++
	s.lastInfo = &info
	lines := endOfDayReceipt(s.eods, n, total, s.opts.TerminalID, now)
	s.lastReceipt, s.lastAdmin = lines, true
	if _, err := ss.printReceipt(ctx, true, 3, lines); err != nil {
		return err
	}
	return ss.finish(ctx, zvt.Completion())
}

// repeat serves Repeat Receipt 06 20 (§2.20): service byte bit 0 asks for
// the Status-Information again, bit 1 for no receipt; default 00.
func (ss *session) repeat(ctx context.Context, cmd zvt.APDU) error {
	s := ss.s
	if ok, err := ss.checkPassword(ctx, cmd.Data); !ok {
		return err
	}
	service := byte(0)
	fs, err := zvt.DecodeFields(cmd.Data[3:])
	if err != nil {
		return ss.tr.Send(ctx, zvt.Nack(0x9A))
	}
	for _, f := range fs {
		if f.BMP == 0x03 {
			service = f.Value[0]
		}
	}
	if err := ss.ack(ctx); err != nil {
		return err
	}
	wantSI := service&0x01 != 0 && !s.quirk(QuirkRepeatNoStatus)
	wantReceipt := service&0x02 == 0
	if s.lastInfo == nil && (wantSI || wantReceipt) {
		return ss.abortTx(ctx, 0x83) // nothing stored to repeat
	}
	if wantSI {
		if _, err := ss.call(ctx, *s.lastInfo); err != nil {
			return err
		}
	}
	if wantReceipt {
		kind := byte(2)
		if s.lastAdmin {
			kind = 3
		}
		if _, err := ss.printReceipt(ctx, s.lastAdmin, kind, s.lastReceipt); err != nil {
			return err
		}
	}
	return ss.finish(ctx, zvt.Completion())
}

func bcdValue(b []byte) int64 {
	var v int64
	for _, x := range b {
		v = v*100 + int64(x>>4)*10 + int64(x&0x0F)
	}
	return v
}

// TestCardTrack2 is the track 2 the simulator's card carries (BMP 23,
// BCD packed, field separator D): card number 6799998900000000019,
// expiry 12/25. Read Card sends it in clear, as terminals without track
// masking do: the ECR must mask it.
var TestCardTrack2 = []byte{0x67, 0x99, 0x99, 0x89, 0x00, 0x00, 0x00, 0x00, 0x01, 0x9D, 0x25, 0x12}

// readCard serves Read Card 06 C0 [<timeout> [19<card-type>] …] (§2.21):
// "insert card", then the card data in a Status-Information (§3.1.2: 23
// <track 2>), whose acknowledgement gives master rights back: there is no
// Completion. An Abort before the card is read ends it with 06 1E 6C.
func (ss *session) readCard(ctx context.Context, cmd zvt.APDU) error {
	if len(cmd.Data) > 1 { // <card-type> etc. after the timeout
		if _, err := zvt.DecodeFields(cmd.Data[1:]); err != nil {
			return ss.tr.Send(ctx, zvt.Nack(0x9A))
		}
	}
	if err := ss.ack(ctx); err != nil {
		return err
	}
	aborted, err := ss.status(ctx, 0x0A, ss.s.opts.Step) // insert card
	if err != nil {
		return err
	}
	if aborted {
		return ss.abortTx(ctx, 0x6C)
	}
	_, err = ss.call(ctx, zvt.StatusInfo(zvt.Field{BMP: 0x23, Value: append([]byte{}, TestCardTrack2...)}))
	if errors.Is(err, errYielded) {
		return nil
	}
	return err
}
