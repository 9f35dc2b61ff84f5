package zvt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/logkey"
)

// serveMaster answers the terminal's messages while it holds master rights.
// Every message is answered (80 00 00 unless the handler refused it) after
// the handler has run, so a Status-Information is persisted before the
// terminal may commit it.
func (c *Client) serveMaster(ctx context.Context, tr Transport, a *activeTx, h device.TxEventHandler, onCompletion func(APDU)) (device.TxResult, error) {
	if h == nil {
		h = func(context.Context, device.TxEvent) error { return nil }
	}
	var (
		res        device.TxResult
		persistErr error
		lines      []string // print lines of the receipt being printed
		blockLines []string // text-block lines of the receipt being printed
		abortReply chan error
		// T4 runs from the terminal's last message (§2.56: "if the PT does
		// not send any command within T4"); a 04 FF with a timeout sets a
		// new T4 for the rest of the command (§3.7).
		t4dur   = c.opts.T4
		t4      = time.Now().Add(t4dur)
		retries int // 84 9C answers to this command's Status-Information
	)
	defer func() {
		if abortReply != nil { // the call failed before the terminal answered it
			abortReply <- fmt.Errorf("abort: %w", ErrNoAnswer)
		}
	}()
	// sendAbort sends 06 B0 if Abort asked for it. It runs right after we
	// answered a terminal message or when the line is quiet: the moments
	// the terminal listens, so the frames rarely cross (PA00P015 p.55).
	sendAbort := func() error {
		select {
		case r := <-a.abort:
			if abortReply != nil {
				r <- nil // one abort is on its way already
				return nil
			}
			if err := tr.Send(ctx, AbortCmd()); err != nil {
				r <- err
				return fmt.Errorf("send abort: %w", err)
			}
			abortReply = r
		default:
		}
		return nil
	}
	answer := func(r APDU) error {
		if err := tr.Send(ctx, r); err != nil {
			return err
		}
		return sendAbort()
	}
	for {
		// Poll in slices so an Abort request is picked up between messages.
		msg, err := tr.Recv(ctx, earliest(t4, time.Now().Add(100*time.Millisecond)))
		if errors.Is(err, device.ErrTimeout) {
			if time.Now().After(t4) {
				return res, ErrT4
			}
			if err := sendAbort(); err != nil {
				return res, err
			}
			continue
		}
		if err != nil {
			return res, err
		}
		now := time.Now()
		if msg.Class == 0x80 || msg.Class == 0x84 { // the answer to our Abort
			if abortReply != nil {
				if msg.IsNack() {
					abortReply <- rejected("Abort", msg)
				} else {
					abortReply <- nil
				}
				abortReply = nil
			}
			continue
		}
		t4 = now.Add(t4dur) // every terminal message restarts T4
		switch msg.Command() {
		case CmdIntermediate:
			if len(msg.Data) >= 2 { // a new T4 in BCD minutes
				if m, err := unbcd(msg.Data[1:2]); err == nil && m > 0 {
					t4dur = time.Duration(m) * time.Minute
					t4 = now.Add(t4dur)
				}
			}
			code := byte(0)
			if len(msg.Data) > 0 {
				code = msg.Data[0]
			}
			_ = h(ctx, device.TxEvent{Kind: device.EventIntermediate, At: now, Status: code, Text: IntermediateText(code)})
			err = answer(c.ackFor(msg))
		case CmdStatusInfo:
			info, perr := ParseStatusInfo(msg.Data)
			switch {
			case perr != nil && info != nil && info.ResultCode == 0 && info.ReceiptNo == 0 && info.Amount == 0:
				info = nil // an unknown BMP came before anything worth keeping
			case perr != nil && info != nil:
				// Vendor fields after the standard ones: keep what we read
				// rather than refuse every payment on this terminal.
				c.log.Warn().Err(perr).Msg("zvt status information partly parsed")
			}
			if info == nil {
				// We cannot read it, so we cannot persist it: refuse.
				persistErr = perr
				err = answer(Nack(0x9A))
				break
			}
			res.Info = info
			c.log.Debug().Int(logkey.ReceiptNo, info.ReceiptNo).Uint8("result", info.ResultCode).Msg("zvt status information")
			herr := h(ctx, device.TxEvent{Kind: device.EventStatusInfo, At: now, Info: info})
			if errors.Is(herr, device.ErrRetryLater) && retries < c.opts.RetryLater {
				// "Repeat later" (§2.2.6): the terminal sends the
				// Status-Information again after 2 s and commits nothing
				// meanwhile.
				retries++
				c.log.Warn().Err(herr).Int("attempt", retries).Msg("zvt status information not stored yet, asking the terminal to repeat it")
				err = answer(Nack(0x9C))
				break
			}
			if herr != nil {
				persistErr = fmt.Errorf("%w: %w", ErrPersist, herr)
				err = answer(Nack(0x66))
				break
			}
			persistErr = nil
			c.noteReceipt(msg.Data, info)
			err = answer(c.ackFor(msg))
			if err == nil && a.endOnStatus != nil {
				// Read Card (§2.21): "an implicit master-rights change to
				// the ECR takes place, i.e. there is no Completion".
				a.endOnStatus(msg.Data)
				res.Outcome, res.Code = device.Approved, info.ResultCode
				if info.ResultCode != 0 {
					res.Outcome = device.Declined
				}
				res.Message = ResultText(res.Code)
				return res, nil
			}
		case CmdPrintLine:
			if len(msg.Data) == 0 {
				err = answer(c.ackFor(msg))
				break
			}
			attr, text := msg.Data[0], string(msg.Data[1:])
			if attr == 0xFF { // line feeds only
				err = answer(c.ackFor(msg))
				break
			}
			lines = append(lines, text)
			last := attr&0x80 != 0 && attr != 0x80
			var herr error
			if last {
				rc := device.TxReceipt{Lines: lines}
				res.Receipts = append(res.Receipts, rc)
				herr = h(ctx, device.TxEvent{Kind: device.EventPrint, At: now, Receipt: &rc})
				lines = nil
			}
			if herr != nil {
				err = answer(Nack(0xCC))
			} else {
				err = answer(c.ackFor(msg))
			}
		case CmdPrintTextBlock:
			rc, ended, perr := parseTextBlock(msg.Data)
			if perr != nil {
				err = answer(Nack(0x9A))
				break
			}
			// Blocks of one receipt are joined until the attribute that
			// ends it (§3.6); a terminal that sends no attribute at all
			// sends a receipt per block.
			rc.Lines = append(blockLines, rc.Lines...)
			if !ended {
				blockLines = rc.Lines
				err = answer(c.ackFor(msg))
				break
			}
			blockLines = nil
			res.Receipts = append(res.Receipts, rc)
			if herr := h(ctx, device.TxEvent{Kind: device.EventPrint, At: now, Receipt: &rc}); herr != nil {
				err = answer(Nack(0xCC))
			} else {
				err = answer(c.ackFor(msg))
			}
		case CmdCompletion:
			if err := tr.Send(ctx, c.ackFor(msg)); err != nil { // master rights are back: no abort after this
				return res, err
			}
			if abortReply != nil {
				abortReply <- nil
				abortReply = nil
			}
			if onCompletion != nil {
				onCompletion(msg)
			}
			res.Outcome = device.Approved
			if res.Info != nil && res.Info.ResultCode != 0 {
				res.Outcome = device.Declined
				res.Code = res.Info.ResultCode
			}
			if fs, _ := DecodeFields(msg.Data); res.Outcome == device.Approved {
				// A Completion may carry its own result code (BMP 27).
				if rc, ok := fieldMap(fs)[0x27]; ok && len(rc) == 1 && rc[0] != 0 {
					res.Outcome, res.Code = device.Declined, rc[0]
				}
			}
			res.Message = ResultText(res.Code)
			if len(lines) > 0 {
				res.Receipts = append(res.Receipts, device.TxReceipt{Lines: lines})
			}
			if len(blockLines) > 0 {
				res.Receipts = append(res.Receipts, device.TxReceipt{Lines: blockLines})
			}
			return res, persistErr
		case CmdAbortPT:
			if err := tr.Send(ctx, c.ackFor(msg)); err != nil { // master rights are back: no abort after this
				return res, err
			}
			if abortReply != nil {
				abortReply <- nil
				abortReply = nil
			}
			res.Outcome = device.Declined
			if len(msg.Data) > 0 {
				res.Code = msg.Data[0]
			}
			if res.Code == 0x6C {
				res.Outcome = device.Aborted
			}
			res.Message = ResultText(res.Code)
			return res, persistErr
		case CmdSetTimeECR:
			// Set Date and Time in ECR (§3.4), after a Diagnosis: posgate
			// does not set the box's clock from a terminal; acknowledged.
			err = answer(c.ackFor(msg))
		default:
			c.log.Debug().Str("apdu", Describe(msg)).Msg("zvt unsupported terminal command")
			err = answer(Nack(0x83))
		}
		if err != nil {
			return res, fmt.Errorf("answer %s: %w", CommandName(msg), err)
		}
	}
}

// parseTextBlock reads a 06 D3: BMP 06 with tag 25 (07 lines, 09
// attributes) and 1F07. ended reports whether the block ends its receipt:
// its last item is an attribute 1xxx xxxx other than 80, or it carries no
// attribute at all.
func parseTextBlock(data []byte) (rc device.TxReceipt, ended bool, err error) {
	fs, err := DecodeFields(data)
	if err != nil {
		return rc, false, fmt.Errorf("parse text block: %w", err)
	}
	tlv, ok := fieldMap(fs)[0x06]
	if !ok {
		return rc, false, fmt.Errorf("parse text block: %w: no bmp 06", ErrBadValue)
	}
	ts, err := DecodeTLVs(tlv)
	if err != nil {
		return rc, false, fmt.Errorf("parse text block: %w", err)
	}
	ended = true
	if t, ok := findTLV(ts, TagReceiptType); ok && len(t.Value) == 1 {
		rc.Kind = map[byte]string{1: "merchant", 2: "customer", 3: "administration"}[t.Value[0]]
	}
	if t, ok := findTLV(ts, TagPrintTexts); ok {
		inner, err := DecodeTLVs(t.Value)
		if err != nil {
			return rc, false, fmt.Errorf("parse text block: %w", err)
		}
		attrs := false
		for _, l := range inner {
			switch l.Tag {
			case TagTextLine:
				rc.Lines = append(rc.Lines, string(l.Value))
			case TagAttribute:
				attrs = true
			}
		}
		if attrs {
			last := inner[len(inner)-1]
			ended = last.Tag == TagAttribute && len(last.Value) == 1 && last.Value[0]&0x80 != 0 && last.Value[0] != 0x80
		}
	}
	return rc, ended, nil
}

// parseStatusCompletion reads the 06 0F after a Status Enquiry:
// [software version LLLVAR] terminal-status [06 TLV].
func parseStatusCompletion(data []byte) device.TerminalStatus {
	var st device.TerminalStatus
	if len(data) >= 3 && data[0]&0xF0 == 0xF0 && data[1]&0xF0 == 0xF0 && data[2]&0xF0 == 0xF0 {
		n := int(data[0]&0x0F)*100 + int(data[1]&0x0F)*10 + int(data[2]&0x0F)
		if len(data) >= 3+n {
			st.Software = strings.TrimRight(string(data[3:3+n]), "\x00 ")
			data = data[3+n:]
		}
	}
	if len(data) > 0 {
		st.Code = data[0]
	}
	st.Text = TerminalStatusText(st.Code)
	return st
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
