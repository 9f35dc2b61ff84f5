package zvt

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/device"
)

var (
	_ device.PreAuthTerminal    = (*Client)(nil)
	_ device.DiagnosticTerminal = (*Client)(nil)
)

// PreAuthorize reserves an amount (Pre-Authorisation 06 22, PA00P015 §2.8).
// The terminal prints no receipt for a successful reservation (§2.2.7).
func (c *Client) PreAuthorize(ctx context.Context, p device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	cc, err := c.currency(p)
	if err != nil {
		return device.TxResult{}, err
	}
	return c.run(ctx, PreAuthorization(p.Amount, cc), h)
}

// BookTotal books p.Amount of the reservation receiptNo (Book Total 06 24,
// §2.13).
func (c *Client) BookTotal(ctx context.Context, receiptNo int, p device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	if err := checkReceiptNo(receiptNo); err != nil {
		return device.TxResult{}, fmt.Errorf("book total: %w", err)
	}
	cc, err := c.currency(p)
	if err != nil {
		return device.TxResult{}, err
	}
	return c.run(ctx, BookTotal(receiptNo, p.Amount, cc), h)
}

// PartialReversal releases unused.Amount of the reservation receiptNo
// (Partial-Reversal 06 23, §2.10). An unused amount of 0 books it all.
func (c *Client) PartialReversal(ctx context.Context, receiptNo int, unused device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	if err := checkReceiptNo(receiptNo); err != nil {
		return device.TxResult{}, fmt.Errorf("partial reversal: %w", err)
	}
	cc := c.cc
	if unused.Amount < 0 || unused.Amount > 999999999999 {
		return device.TxResult{}, fmt.Errorf("partial reversal: %w: amount %d", ErrBadValue, unused.Amount)
	}
	if unused.Currency != "" {
		var err error
		if cc, err = CurrencyCode(unused.Currency); err != nil {
			return device.TxResult{}, err
		}
	}
	return c.run(ctx, PartialReversal(receiptNo, unused.Amount, cc), h)
}

// ReleasePreAuth releases the whole reservation receiptNo
// (Pre-Authorisation Reversal 06 25, §2.14).
func (c *Client) ReleasePreAuth(ctx context.Context, receiptNo int, h device.TxEventHandler) (device.TxResult, error) {
	if err := checkReceiptNo(receiptNo); err != nil {
		return device.TxResult{}, fmt.Errorf("release pre-authorisation: %w", err)
	}
	return c.run(ctx, PreAuthReversal(receiptNo), h)
}

// TurnoverTotals asks for the unsettled totals (Send Turnover Totals
// 06 10, §2.43): Info.Amount holds the total, nothing is settled.
func (c *Client) TurnoverTotals(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	return c.run(ctx, TurnoverTotals(c.pwd), h)
}

// Diagnosis makes the terminal contact its host (06 70, §2.17). Approved
// means the host answered; a terminal without the function returns an
// error wrapping ErrNotSupported.
func (c *Client) Diagnosis(ctx context.Context) (device.TxResult, error) {
	res, err := c.run(ctx, Diagnosis(), nil)
	if err == nil && res.Outcome != device.Approved {
		err = fmt.Errorf("diagnosis: %w", &RejectedError{Command: "Diagnosis", Code: res.Code})
	}
	c.smu.Lock()
	c.diagAt, c.diagErr, c.diagDone = time.Now(), err, true
	if err == nil || errors.Is(err, ErrNotSupported) {
		c.needDiag = false // done, or never possible: do not ask every minute
	}
	c.smu.Unlock()
	return res, err
}

// LastDiagnosis reports when the last Diagnosis ran and its error (nil:
// the terminal reached its host); ran is false if none ran yet.
func (c *Client) LastDiagnosis() (at time.Time, err error, ran bool) {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.diagAt, c.diagErr, c.diagDone
}

func (c *Client) setNeedDiagnosis(on bool) {
	c.smu.Lock()
	c.needDiag = on
	c.smu.Unlock()
}

// RepeatReceipt sends Repeat Receipt 06 20 with an explicit service byte
// (§2.20): bit 0 asks for the last Status-Information, bit 1 for no
// receipt. RepeatLastResult is RepeatReceipt(ctx, 0x01, h).
func (c *Client) RepeatReceipt(ctx context.Context, service byte, h device.TxEventHandler) (device.TxResult, error) {
	return c.run(ctx, RepeatReceiptService(c.pwd, service), h)
}

func checkReceiptNo(n int) error {
	if n <= 0 || n > 9999 {
		return fmt.Errorf("%w: receipt number %d", ErrBadValue, n)
	}
	return nil
}
