package nexo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/posgate/posgate/device"
)

// Register checks that the terminal answers and shares posgate's key
// (a Diagnosis); nexo needs no log-on.
func (c *Client) Register(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.diagnosis(ctx)
	return err
}

// Status asks the terminal's health (Diagnosis). Code 0 means GlobalStatus OK.
func (c *Client) Status(ctx context.Context) (device.TerminalStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.diagnosis(ctx)
}

// diagnosis runs a DiagnosisRequest; caller must hold mu.
func (c *Client) diagnosis(ctx context.Context) (device.TerminalStatus, error) {
	req := &Request{MessageHeader: c.header(CategoryDiagnosis), DiagnosisRequest: &DiagnosisRequest{}}
	resp, err := c.exchange(ctx, req)
	if err != nil {
		return device.TerminalStatus{}, err
	}
	if resp == nil || resp.DiagnosisResponse == nil {
		return device.TerminalStatus{}, fmt.Errorf("diagnosis on %s: %w", c.opts.ID, &FormatError{Reason: "no DiagnosisResponse"})
	}
	d := resp.DiagnosisResponse
	st := device.TerminalStatus{Text: d.Response.Result}
	if d.POIStatus != nil {
		st.Text = d.POIStatus.GlobalStatus
	}
	if d.Response.Result != ResultSuccess || st.Text != "OK" {
		st.Code = 1
		if d.Response.ErrorCondition != "" {
			st.Text += " " + d.Response.ErrorCondition
		}
	}
	return st, nil
}

// Authorize runs a sale: a PaymentRequest for the amount in major units.
// A lost answer is resolved by asking the terminal (TransactionStatus)
// for up to StatusWait; only then does it fail, with ErrOutcomeUnknown.
func (c *Client) Authorize(ctx context.Context, ch device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	return c.payment(ctx, ch, "", h)
}

// Refund credits ch.Amount: a ReversalRequest of the sale ch.OriginalRef
// names for that amount (a referenced refund), or without one an
// unreferenced refund (PaymentType Refund, which Adyen must enable for
// the merchant).
func (c *Client) Refund(ctx context.Context, ch device.Charge, h device.TxEventHandler) (device.TxResult, error) {
	if ch.OriginalRef != "" {
		cur := ch.Currency
		if cur == "" {
			cur = c.opts.Currency
		}
		return c.reversal(ctx, ch.OriginalRef, FormatMinor(ch.Amount, Exponent(cur)), h)
	}
	return c.payment(ctx, ch, "Refund", h)
}

// Reverse fails with ErrNoReference: nexo voids by reference (ReverseRef).
func (c *Client) Reverse(ctx context.Context, receiptNo int, h device.TxEventHandler) (device.TxResult, error) {
	return device.TxResult{}, fmt.Errorf("reverse receipt %d on %s: %w", receiptNo, c.opts.ID, ErrNoReference)
}

// ReverseRef voids the whole transaction ref names (its TxInfo.Ref): a
// ReversalRequest with ReversalReason MerchantCancel. Adyen decides
// whether that is a cancel or a refund; Success means it took it.
func (c *Client) ReverseRef(ctx context.Context, ref string, h device.TxEventHandler) (device.TxResult, error) {
	return c.reversal(ctx, ref, "", h)
}

func (c *Client) payment(ctx context.Context, ch device.Charge, paymentType string, h device.TxEventHandler) (device.TxResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := ch.Currency
	if cur == "" {
		cur = c.opts.Currency
	}
	if ch.Amount <= 0 {
		return device.TxResult{}, fmt.Errorf("payment on %s: amount %d must be positive", c.opts.ID, ch.Amount)
	}
	hdr := c.header(CategoryPayment)
	ref := ch.Reference
	if ref == "" {
		ref = hdr.ServiceID
	}
	pr := &PaymentRequest{
		SaleData:           SaleData{SaleTransactionID: TransactionID{TransactionID: ref, TimeStamp: c.timestamp()}},
		PaymentTransaction: PaymentTransaction{AmountsReq: AmountsReq{Currency: cur, RequestedAmount: FormatMinor(ch.Amount, Exponent(cur))}},
	}
	if paymentType != "" {
		pr.PaymentData = &PaymentData{PaymentType: paymentType}
	}
	c.setRunning(hdr.ServiceID)
	c.stateMu.Lock()
	c.lastSale, c.handler = hdr.ServiceID, h
	c.stateMu.Unlock()
	defer func() {
		c.setRunning("")
		c.stateMu.Lock()
		c.handler = nil
		c.stateMu.Unlock()
	}()
	resp, err := c.exchange(ctx, &Request{MessageHeader: hdr, PaymentRequest: pr})
	var pres *PaymentResponse
	switch {
	case err == nil && (resp == nil || resp.PaymentResponse == nil):
		err = &errSent{fmt.Errorf("payment on %s: %w", c.opts.ID, &FormatError{Reason: "no PaymentResponse"})}
	case err == nil:
		pres = resp.PaymentResponse
	}
	if err != nil {
		var sent *errSent
		if !errors.As(err, &sent) {
			return device.TxResult{}, err
		}
		c.log.Warn().Err(err).Str("service_id", hdr.ServiceID).Msg("payment answer lost; asking the terminal")
		res, rerr := c.resolve(ctx, CategoryPayment, hdr.ServiceID)
		if rerr != nil {
			return device.TxResult{}, fmt.Errorf("%w; %w", err, rerr)
		}
		return c.deliver(ctx, res, h), nil
	}
	if pres.Response.Result == ResultPartial {
		return c.refusePartial(ctx, pres, cur, h)
	}
	return c.deliver(ctx, paymentResult(pres, c.opts.POIID, cur), h), nil
}

// refusePartial voids a partial approval: posgate never asks for one, and
// a sale completed for less than its amount would leave the cashier
// believing it was paid. Caller must hold mu.
func (c *Client) refusePartial(ctx context.Context, pres *PaymentResponse, cur string, h device.TxEventHandler) (device.TxResult, error) {
	res := paymentResult(pres, c.opts.POIID, cur)
	c.log.Warn().Int64("authorized", res.Info.Amount).Msg("partial approval; reversing it")
	rv, err := c.reversalLocked(ctx, res.Info.Ref, "", nil)
	if err != nil || rv.Outcome != device.Approved {
		// Left approved, saying what was charged, for a person to settle.
		res.Message = fmt.Sprintf("Partial: only %s %s authorised, and its void failed", FormatMinor(res.Info.Amount, Exponent(res.Info.Currency)), res.Info.Currency)
		return c.deliver(ctx, res, h), nil
	}
	res.Outcome, res.Code, res.Message = device.Declined, conditionCode("PaymentRestriction"), "Partial approval, reversed"
	res.Info.ResultCode = res.Code
	return c.deliver(ctx, res, h), nil
}

func (c *Client) reversal(ctx context.Context, ref string, amount Decimal, h device.TxEventHandler) (device.TxResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reversalLocked(ctx, ref, amount, h)
}

// reversalLocked: caller must hold mu.
func (c *Client) reversalLocked(ctx context.Context, ref string, amount Decimal, h device.TxEventHandler) (device.TxResult, error) {
	orig, err := parseRef(ref)
	if err != nil {
		return device.TxResult{}, fmt.Errorf("reversal on %s: %w", c.opts.ID, err)
	}
	hdr := c.header(CategoryReversal)
	rr := &ReversalRequest{OriginalPOITransaction: OriginalPOITransaction{POITransactionID: orig},
		ReversalReason: "MerchantCancel", ReversedAmount: amount}
	c.setRunning(hdr.ServiceID)
	defer c.setRunning("")
	resp, err := c.exchange(ctx, &Request{MessageHeader: hdr, ReversalRequest: rr})
	if err == nil && (resp == nil || resp.ReversalResponse == nil) {
		err = &errSent{fmt.Errorf("reversal on %s: %w", c.opts.ID, &FormatError{Reason: "no ReversalResponse"})}
	}
	if err != nil {
		var sent *errSent
		if !errors.As(err, &sent) {
			return device.TxResult{}, err
		}
		res, rerr := c.resolve(ctx, CategoryReversal, hdr.ServiceID)
		if rerr != nil {
			return device.TxResult{}, fmt.Errorf("%w; %w", err, rerr)
		}
		return c.deliver(ctx, res, h), nil
	}
	return c.deliver(ctx, reversalResult(resp.ReversalResponse, c.opts.POIID, amount), h), nil
}

// deliver hands the result's Status-Information and receipts to h. A
// nexo terminal has committed before it answers, so h cannot refuse:
// its errors are logged, and the result is returned either way.
func (c *Client) deliver(ctx context.Context, res device.TxResult, h device.TxEventHandler) device.TxResult {
	if h == nil {
		return res
	}
	now := c.opts.Now()
	if res.Info != nil {
		if err := h(ctx, device.TxEvent{Kind: device.EventStatusInfo, At: now, Info: res.Info}); err != nil {
			c.log.Error().Err(err).Msg("terminal result not persisted by the handler")
		}
	}
	for i := range res.Receipts {
		if err := h(ctx, device.TxEvent{Kind: device.EventPrint, At: now, Receipt: &res.Receipts[i]}); err != nil {
			c.log.Warn().Err(err).Msg("receipt not taken by the handler")
		}
	}
	return res
}

// resolve asks the terminal for the outcome of the transaction sent as
// serviceID until it is final, for up to StatusWait. It fails with
// device.ErrOutcomeUnknown.
func (c *Client) resolve(ctx context.Context, category, serviceID string) (device.TxResult, error) {
	deadline := time.Now().Add(c.opts.StatusWait)
	var last error
	for {
		res, err := c.transactionStatus(ctx, &MessageReference{MessageCategory: category, ServiceID: serviceID, SaleID: c.opts.SaleID})
		if err == nil {
			return res, nil
		}
		last = err
		if ctx.Err() != nil || time.Now().Add(c.opts.StatusEvery).After(deadline) {
			return device.TxResult{}, fmt.Errorf("%s %s on %s: %w: %w", category, serviceID, c.opts.ID, device.ErrOutcomeUnknown, last)
		}
		t := time.NewTimer(c.opts.StatusEvery)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// TransactionStatus asks for the outcome of the payment (or reversal)
// sent with serviceID; with serviceID "" of the last payment. A
// transaction still running gives ErrInProgress; one the terminal does
// not know comes back Declined with Message "NotFound" and no Info.
func (c *Client) TransactionStatus(ctx context.Context, category, serviceID string) (device.TxResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref := &MessageReference{MessageCategory: category, SaleID: c.opts.SaleID, ServiceID: serviceID}
	return c.transactionStatus(ctx, ref)
}

// RepeatLastResult asks for the terminal's last payment (TransactionStatus)
// and hands its Status-Information to h. It fails with ErrInProgress while
// that payment still runs.
func (c *Client) RepeatLastResult(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stateMu.Lock()
	sid := c.lastSale
	c.stateMu.Unlock()
	res, err := c.transactionStatus(ctx, &MessageReference{MessageCategory: CategoryPayment, SaleID: c.opts.SaleID, ServiceID: sid})
	if err != nil {
		return res, err
	}
	return c.deliver(ctx, res, h), nil
}

// transactionStatus: caller must hold mu (or be inside a call that does).
func (c *Client) transactionStatus(ctx context.Context, ref *MessageReference) (device.TxResult, error) {
	req := &Request{MessageHeader: c.header(CategoryTransactionStatus), TransactionStatusRequest: &TransactionStatusRequest{
		MessageReference: ref, ReceiptReprintFlag: true, DocumentQualifier: []string{"CashierReceipt", "CustomerReceipt"}}}
	if ref.ServiceID == "" {
		req.TransactionStatusRequest.MessageReference = &MessageReference{MessageCategory: ref.MessageCategory, SaleID: ref.SaleID}
	}
	resp, err := c.exchange(ctx, req)
	if err != nil {
		return device.TxResult{}, err
	}
	if resp == nil || resp.TransactionStatusResponse == nil {
		return device.TxResult{}, fmt.Errorf("transaction status on %s: %w", c.opts.ID, &FormatError{Reason: "no TransactionStatusResponse"})
	}
	ts := resp.TransactionStatusResponse
	switch {
	case ts.Response.Result != ResultSuccess && ts.Response.ErrorCondition == "InProgress":
		return device.TxResult{}, fmt.Errorf("transaction status on %s: %w", c.opts.ID, ErrInProgress)
	case ts.Response.Result != ResultSuccess && ts.Response.ErrorCondition == "NotFound":
		return device.TxResult{Outcome: device.Declined, Code: conditionCode("NotFound"), Message: "NotFound: the terminal has no record of it"}, nil
	case ts.Response.Result != ResultSuccess:
		return device.TxResult{}, fmt.Errorf("transaction status on %s: %w: %s %s", c.opts.ID, ErrRefused, ts.Response.ErrorCondition, additional(ts.Response.AdditionalResponse, "message"))
	case ts.RepeatedMessageResponse == nil:
		return device.TxResult{}, fmt.Errorf("transaction status on %s: %w", c.opts.ID, &FormatError{Reason: "Success without RepeatedMessageResponse"})
	}
	body := ts.RepeatedMessageResponse.RepeatedResponseMessageBody
	switch {
	case body.PaymentResponse != nil:
		return paymentResult(body.PaymentResponse, c.opts.POIID, c.opts.Currency), nil
	case body.ReversalResponse != nil:
		return reversalResult(body.ReversalResponse, c.opts.POIID, ""), nil
	}
	return device.TxResult{}, fmt.Errorf("transaction status on %s: %w", c.opts.ID, &FormatError{Reason: "RepeatedResponseMessageBody holds neither PaymentResponse nor ReversalResponse"})
}

// Abort asks the terminal to stop the running payment (AbortRequest
// naming its ServiceID). The terminal answers 200 with no body; the
// running call reports the real outcome. With nothing running it does
// nothing: nexo has no bare abort.
func (c *Client) Abort(ctx context.Context) error {
	c.stateMu.Lock()
	sid := c.running
	c.stateMu.Unlock()
	if sid == "" {
		return nil
	}
	req := &Request{MessageHeader: c.header(CategoryAbort), AbortRequest: &AbortRequest{AbortReason: "MerchantAbort",
		MessageReference: MessageReference{MessageCategory: CategoryPayment, ServiceID: sid, SaleID: c.opts.SaleID, POIID: c.opts.POIID}}}
	_, err := c.exchange(ctx, req)
	return err
}

// EndOfDay is not offered over nexo here: Adyen settles by itself.
func (c *Client) EndOfDay(ctx context.Context, h device.TxEventHandler) (device.TxResult, error) {
	return device.TxResult{}, fmt.Errorf("end of day on %s: %w", c.opts.ID, errors.ErrUnsupported)
}

// LogOff does nothing: nexo has no session to end.
func (c *Client) LogOff(ctx context.Context) error { return nil }
