package nexo

import (
	"net/http"
	"time"

	nx "github.com/posgate/posgate/device/nexo"
)

// payment runs a PaymentRequest. The terminal carries on when the
// client's connection drops: the outcome is kept for TransactionStatus.
func (t *Terminal) payment(w http.ResponseWriter, r *http.Request, resp *nx.Response, pr *nx.PaymentRequest) {
	h := resp.MessageHeader
	cur := pr.PaymentTransaction.AmountsReq.Currency
	amount, err := pr.PaymentTransaction.AmountsReq.RequestedAmount.Minor(nx.Exponent(cur))
	if err != nil || amount <= 0 || len(cur) != 3 {
		t.reply(w, r, resp, failure("MessageFormat", "message=bad+AmountsReq"), h)
		return
	}
	d := &dialogue{serviceID: h.ServiceID, abort: make(chan struct{})}
	t.mu.Lock()
	if t.running != nil {
		t.mu.Unlock()
		t.reply(w, r, resp, failure("Busy", "message=Terminal+busy"), h)
		return
	}
	t.running, t.lastPay = d, h.ServiceID
	drop := t.dropNext
	t.dropNext = false
	t.mu.Unlock()

	kind := Sale
	if pr.PaymentData != nil && pr.PaymentData.PaymentType == "Refund" {
		kind = Refund
	}
	// aborted waits d, or until the sale system aborts (unless the
	// terminal ignores aborts); it reports whether the abort came.
	aborted := func(d time.Duration) bool {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-tm.C:
			return false
		case <-t.dialogueAbort():
			return !t.ignoringAbort()
		}
	}
	var res nx.Result
	approve, partial := false, false
	switch amount % 100 {
	case AmountDecline:
		if aborted(t.opts.Step) {
			res = failure("Aborted", "message=104+Merchant+cancelled")
		} else {
			res = failure("Refusal", "refusalReason=05+Do+not+honor&message=DECLINED")
		}
	case AmountNoResult:
		if aborted(t.opts.CardWait) {
			res = failure("Aborted", "message=104+Merchant+cancelled")
		} else {
			res = failure("Cancel", "message=Card+time-out")
		}
	case AmountCustomerAbort:
		res = failure("Cancel", "message=108+Shopper+cancelled+tx")
		aborted(t.opts.Step)
	case AmountApproveAfter:
		aborted(t.opts.CardWait)
		approve = true
	case AmountSlow:
		if aborted(t.opts.Slow) {
			res = failure("Aborted", "message=104+Merchant+cancelled")
		} else {
			approve = true
		}
	case AmountLost:
		drop = true
		approve = !aborted(t.opts.Step)
	case AmountPartial:
		approve = !aborted(t.opts.Step)
		partial = approve
	default:
		if aborted(t.opts.Step) {
			res = failure("Aborted", "message=104+Merchant+cancelled")
		} else {
			approve = true
		}
	}
	if !approve && res.Result == "" {
		res = failure("Aborted", "message=104+Merchant+cancelled")
	}

	t.mu.Lock()
	poiTx := t.nextPOITx()
	pres := &nx.PaymentResponse{Response: res, SaleData: nx.SaleData{SaleTransactionID: pr.SaleData.SaleTransactionID},
		POIData: nx.POIData{POITransactionID: poiTx, POIReconciliationID: "1000"}}
	if partial {
		amount /= 2
	}
	if approve {
		pres.Response = nx.Result{Result: nx.ResultSuccess, AdditionalResponse: "authCode=123456&cardScheme=mc&pspReference=" + poiTx.TransactionID[12:]}
		if partial {
			pres.Response.Result = nx.ResultPartial
		}
		pres.PaymentResult = &nx.PaymentResult{
			AmountsResp: &nx.AmountsResp{Currency: cur, AuthorizedAmount: nx.FormatMinor(amount, nx.Exponent(cur))},
			PaymentInstrumentData: &nx.PaymentInstrumentData{PaymentInstrumentType: "Card", CardData: &nx.CardData{
				MaskedPan: "541333 **** 9999", PaymentBrand: "mc", CardCountryCode: "826", EntryMode: []string{"Contactless"}}},
			PaymentAcquirerData: &nx.PaymentAcquirerData{ApprovalCode: "123456", AcquirerPOIID: t.opts.POIID, MerchantID: "SimulatorMerchant"},
			OnlineFlag:          true,
		}
		pres.PaymentReceipt = receipts(kind, amount, cur, poiTx)
		t.journal = append(t.journal, Entry{Kind: kind, Amount: amount, Currency: cur, SaleTxID: pr.SaleData.SaleTransactionID.TransactionID,
			POITxID: poiTx.TransactionID, ServiceID: h.ServiceID, At: t.opts.Now()})
	}
	resp.PaymentResponse = pres
	t.done[h.ServiceID] = &finished{header: resp.MessageHeader, body: nx.RepeatedMessageBody{PaymentResponse: pres}}
	t.running = nil
	t.mu.Unlock()
	t.log.Info().Int64("amount", amount).Bool("approved", approve).Str("service_id", h.ServiceID).Msg("nexo simulator payment")

	if t.opts.Delay > 0 && wait(r, t.opts.Delay) != nil {
		return
	}
	if drop {
		t.hangUp(w)
		return
	}
	t.send(w, resp)
}

// hangUp closes the client's connection without an answer.
func (t *Terminal) hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // ends the connection without a response
}

func (t *Terminal) dialogueAbort() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running == nil {
		return nil
	}
	return t.running.abort
}

func (t *Terminal) ignoringAbort() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ignoreAbt
}

// abort ends the running payment if the request names it.
func (t *Terminal) abort(a *nx.AbortRequest) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := t.running; d != nil && a.MessageReference.ServiceID == d.serviceID {
		d.once.Do(func() { close(d.abort) })
	}
}

// status answers a TransactionStatusRequest.
func (t *Terminal) status(q *nx.TransactionStatusRequest) *nx.TransactionStatusResponse {
	t.mu.Lock()
	defer t.mu.Unlock()
	sid := ""
	cat := nx.CategoryPayment
	if q.MessageReference != nil {
		sid, cat = q.MessageReference.ServiceID, q.MessageReference.MessageCategory
	}
	if sid == "" && (cat == nx.CategoryPayment || cat == "") {
		sid = t.lastPay
	}
	if t.running != nil && t.running.serviceID == sid {
		return &nx.TransactionStatusResponse{Response: failure("InProgress", "message=Transaction+in+progress")}
	}
	f, ok := t.done[sid]
	if !ok || (cat != "" && f.header.MessageCategory != cat) {
		return &nx.TransactionStatusResponse{Response: failure("NotFound", "message=Transaction+not+found")}
	}
	return &nx.TransactionStatusResponse{
		Response:                nx.Result{Result: nx.ResultSuccess},
		MessageReference:        &nx.MessageReference{MessageCategory: f.header.MessageCategory, ServiceID: sid, SaleID: f.header.SaleID, POIID: f.header.POIID},
		RepeatedMessageResponse: &nx.RepeatedMessageResponse{MessageHeader: f.header, RepeatedResponseMessageBody: f.body},
	}
}

// reversal voids a sale (or refunds part of it with ReversedAmount).
func (t *Terminal) reversal(h nx.Header, q *nx.ReversalRequest) *nx.ReversalResponse {
	t.mu.Lock()
	defer t.mu.Unlock()
	rr := &nx.ReversalResponse{}
	defer func() {
		hdr := h
		hdr.MessageType = nx.TypeResponse
		t.done[h.ServiceID] = &finished{header: hdr, body: nx.RepeatedMessageBody{ReversalResponse: rr}}
	}()
	orig := q.OriginalPOITransaction.POITransactionID.TransactionID
	i := -1
	for j, e := range t.journal {
		if e.POITxID == orig && e.Kind == Sale {
			i = j
		}
	}
	if i < 0 {
		rr.Response = failure("NotFound", "message=Original+transaction+not+found")
		return rr
	}
	sale := &t.journal[i]
	if sale.Reversed {
		rr.Response = failure("NotAllowed", "message=Transaction+already+reversed")
		return rr
	}
	amount := sale.Amount
	if q.ReversedAmount != "" {
		n, err := q.ReversedAmount.Minor(nx.Exponent(sale.Currency))
		if err != nil || n <= 0 || n > sale.Amount {
			rr.Response = failure("MessageFormat", "message=bad+ReversedAmount")
			return rr
		}
		amount = n
	}
	kind := Reversal
	if amount < sale.Amount {
		kind = Refund
	} else {
		sale.Reversed = true
	}
	poiTx := t.nextPOITx()
	t.journal = append(t.journal, Entry{Kind: kind, Amount: amount, Currency: sale.Currency, POITxID: poiTx.TransactionID,
		ServiceID: h.ServiceID, OrigPOITx: orig, At: t.opts.Now()})
	rr.Response = nx.Result{Result: nx.ResultSuccess, AdditionalResponse: "pspReference=" + poiTx.TransactionID[12:]}
	rr.POIData = &nx.POIData{POITransactionID: poiTx}
	rr.ReversedAmount = nx.FormatMinor(amount, nx.Exponent(sale.Currency))
	return rr
}

// receipts builds the cashier and customer receipts, each line
// URL-encoded "name=…&value=…&key=…" as Adyen terminals send them.
func receipts(kind Kind, amount int64, cur string, tx nx.TransactionID) []nx.PaymentReceipt {
	lines := func(extra string) []nx.OutputText {
		out := []nx.OutputText{
			{Text: "key=header1&name=posgate+simulator"},
			{Text: "name=Date&value=" + tx.TimeStamp[:10] + "&key=txdate"},
			{Text: "name=Type&value=" + string(kind) + "&key=txtype"},
			{Text: "name=Card&value=**** 9999&key=pan"},
			{Text: "name=Total&value=" + cur + "+" + string(nx.FormatMinor(amount, nx.Exponent(cur))) + "&key=totalAmount"},
			{Text: "name=Ref&value=" + tx.TransactionID + "&key=txRef"},
			{Text: "name=" + extra + "&key=approved"},
		}
		for i := range out {
			out[i].EndOfLineFlag = true
		}
		return out
	}
	return []nx.PaymentReceipt{
		{DocumentQualifier: "CashierReceipt", OutputContent: nx.OutputContent{OutputFormat: "Text", OutputText: lines("APPROVED")}},
		{DocumentQualifier: "CustomerReceipt", OutputContent: nx.OutputContent{OutputFormat: "Text", OutputText: lines("APPROVED+-+Customer+copy")}},
	}
}
