package me_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/me"
	"github.com/posgate/posgate/simulator/taxservice"
)

// TestFICOnInvoiceAndInCompletedEvent: an invoice is registered after
// its commit; the simulator's FIC is on the invoice and in
// fiscalization.completed, and the request it got passes the official XSD.
func TestFICOnInvoiceAndInCompletedEvent(t *testing.T) {
	r := newRig(t, rigOptions{})
	inv := r.sale(1250)
	if st := r.status(inv.ID); st.Status != fiscal.RegPending {
		t.Fatalf("before the worker: %+v", st)
	}
	r.drain(5)
	fic, ok := r.sim.FIC(inv.Signature.Code)
	if !ok {
		t.Fatal("the simulator registered nothing")
	}
	st := r.status(inv.ID)
	if st.Status != fiscal.RegCompleted || st.FIC != fic || st.Attempts != 1 {
		t.Fatalf("status %+v, want completed with FIC %s", st, fic)
	}
	ev := r.events(fiscal.EventCompleted)
	if len(ev) != 1 || ev[0].Data["fic"] != fic || ev[0].Data["iic"] != inv.Signature.Code || ev[0].Data["invoice_id"] != inv.ID {
		t.Fatalf("fiscalization.completed: %+v", ev)
	}
	reqs := r.sim.Requests()
	if len(reqs) != 1 || reqs[0].SubseqDelivType != "" {
		t.Fatalf("requests: %+v", reqs)
	}
	if xmllint, err := exec.LookPath("xmllint"); err == nil {
		_, body, err := me.Body(reqs[0].Body)
		if err != nil {
			t.Fatal(err)
		}
		doc := etree.NewDocument()
		doc.SetRoot(body.Copy())
		b, _ := doc.WriteToBytes()
		if out, err := exec.Command(xmllint, "--noout", "--schema", schemaDir+"/FiscalService_v5_official.xsd", writeTemp(t, "r.xml", b)).CombinedOutput(); err != nil {
			t.Fatalf("xmllint: %v\n%s", err, out)
		}
	}
}

// TestFault58ThenInitialDeposit: the service refuses a cash invoice of
// a day without an initial deposit (spec 3.8.2, code 58): receipt.error
// carries code 58 and the message; not blocking. After the day's
// deposit is registered, a manual retry completes.
func TestFault58ThenInitialDeposit(t *testing.T) {
	r := newRig(t, rigOptions{sim: taxservice.Options{RequireInitialDeposit: true}})
	inv := r.sale(500)
	r.drain(5)
	st := r.status(inv.ID)
	if st.Status != fiscal.RegError || st.Code != "58" || st.Blocking {
		t.Fatalf("status %+v, want error 58, not blocking", st)
	}
	ev := r.events(fiscal.EventReceiptError)
	if len(ev) != 1 || ev[0].Data["code"] != "58" || ev[0].Data["message"] == "" || ev[0].Data["stage"] != fiscal.StageTaxService {
		t.Fatalf("receipt.error: %+v", ev)
	}
	if err := r.reg.Enqueue(context.Background(), "dep_1", fiscal.KindCashDeposit, r.certID,
		fiscal.CashDeposit{Operation: fiscal.CashInitial, Amount: 10000, At: r.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	r.drain(5)
	if dep, err := r.reg.Status(context.Background(), "dep_1"); err != nil || dep.Status != fiscal.RegCompleted || dep.FIC == "" {
		t.Fatalf("deposit: %+v %v", dep, err)
	}
	if _, err := r.reg.Retry(context.Background(), inv.ID); err != nil {
		t.Fatal(err)
	}
	r.drain(5)
	if st := r.status(inv.ID); st.Status != fiscal.RegCompleted || st.FIC == "" {
		t.Fatalf("after the deposit and a retry: %+v", st)
	}
}

// TestBlockingError: fault 44 (IsIssuerInVAT) is a blocking error
// (functional spec 3.4) and the status says so.
func TestBlockingError(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.sim.Fail(taxservice.FaultCode, "44", 1)
	inv := r.sale(500)
	r.drain(5)
	if st := r.status(inv.ID); st.Status != fiscal.RegError || st.Code != "44" || !st.Blocking {
		t.Fatalf("status %+v, want blocking error 44", st)
	}
	if ev := r.events(fiscal.EventReceiptError); len(ev) != 1 || ev[0].Data["blocking"] != true {
		t.Fatalf("receipt.error: %+v", ev)
	}
}

// TestTwo503ThenSuccess: two HTTP 503s give two receipt.retry on the
// schedule (10 s, 60 s), then one fiscalization.completed; the re-sent
// requests carry SubseqDelivType and the first request's IIC.
func TestTwo503ThenSuccess(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.sim.Fail(taxservice.Fault503, "", 2)
	inv := r.sale(700)
	r.drain(5)
	if st := r.status(inv.ID); st.Status != fiscal.RegPending || st.Attempts != 1 || st.NextAttempt == nil ||
		!st.NextAttempt.Equal(r.clk.Now().Add(10*time.Second)) {
		t.Fatalf("after one 503: %+v", st)
	}
	r.clk.Add(9 * time.Second)
	if r.runOnce() {
		t.Fatal("retried before its time")
	}
	r.clk.Add(time.Second)
	r.drain(5)
	r.clk.Add(60 * time.Second)
	r.drain(5)
	if got := len(r.events(fiscal.EventReceiptRetry)); got != 2 {
		t.Fatalf("%d receipt.retry, want 2", got)
	}
	if got := len(r.events(fiscal.EventCompleted)); got != 1 {
		t.Fatalf("%d fiscalization.completed, want 1", got)
	}
	reqs := r.sim.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, q := range reqs {
		if q.IIC != inv.Signature.Code {
			t.Errorf("request %d IIC %s, want %s", i, q.IIC, inv.Signature.Code)
		}
		if want := map[bool]string{false: "", true: me.SubseqService}[i > 0]; q.SubseqDelivType != want {
			t.Errorf("request %d SubseqDelivType %q, want %q", i, q.SubseqDelivType, want)
		}
	}
}

// TestDeadLetterThenManualRetry: 50 failed attempts dead-letter the
// registration; an admin's retry then completes it with the same IIC.
func TestDeadLetterThenManualRetry(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.sim.Fail(taxservice.Fault503, "", 50)
	inv := r.sale(900)
	for i := range 50 {
		if !r.runOnce() {
			t.Fatalf("attempt %d not due", i+1)
		}
		r.clk.Add(10 * time.Minute)
	}
	st := r.status(inv.ID)
	if st.Status != fiscal.RegDead || st.Attempts != 50 {
		t.Fatalf("after 50 failures: %+v", st)
	}
	if ev := r.events(fiscal.EventDeadLetter); len(ev) != 1 || ev[0].Data["invoice_id"] != inv.ID {
		t.Fatalf("dead letter: %+v", ev)
	}
	if got := len(r.events(fiscal.EventReceiptRetry)); got != 49 {
		t.Fatalf("%d receipt.retry, want 49", got)
	}
	if r.runOnce() {
		t.Fatal("a dead registration was tried")
	}
	if _, err := r.reg.Retry(context.Background(), inv.ID); err != nil {
		t.Fatal(err)
	}
	r.drain(5)
	st = r.status(inv.ID)
	fic, _ := r.sim.FIC(inv.Signature.Code)
	if st.Status != fiscal.RegCompleted || st.FIC != fic || fic == "" {
		t.Fatalf("after the manual retry: %+v", st)
	}
	if _, err := r.reg.Retry(context.Background(), inv.ID); !errors.Is(err, fiscal.ErrNotRetryable) {
		t.Fatalf("retry of a completed registration: %v", err)
	}
}

// TestCrashBetweenAnswerAndCommit acts out a kill -9 after the service
// answered and before the answer was committed: the worker's commit
// never happens, a new worker (the restarted daemon) finds the job still
// pending and registers the invoice again with the same IIC, marked as
// a subsequent delivery; the invoice never gets a second IIC.
func TestCrashBetweenAnswerAndCommit(t *testing.T) {
	errKilled := errors.New("killed")
	r := newRig(t, rigOptions{reg: func(o *fiscal.RegistrationsOptions) {
		o.AfterSend = func(string) error { return errKilled }
	}})
	inv := r.sale(1100)
	if _, err := r.reg.RunOnce(context.Background()); !errors.Is(err, errKilled) {
		t.Fatalf("RunOnce: %v", err)
	}
	if st := r.status(inv.ID); st.Status != fiscal.RegPending || st.FIC != "" {
		t.Fatalf("after the crash: %+v", st)
	}
	opts := r.regOpts
	opts.AfterSend = nil
	restarted := fiscal.NewRegistrations(r.db, opts)
	if did, err := restarted.RunOnce(context.Background()); err != nil || !did {
		t.Fatalf("restarted RunOnce: %v %v", did, err)
	}
	reqs := r.sim.Requests()
	if len(reqs) != 2 || reqs[0].IIC != inv.Signature.Code || reqs[1].IIC != inv.Signature.Code {
		t.Fatalf("requests: %+v", reqs)
	}
	if reqs[1].SubseqDelivType == "" {
		t.Fatal("the re-sent request has no SubseqDelivType")
	}
	got, err := r.inv.Get(context.Background(), inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Signature.Code != inv.Signature.Code || got.Fiscalization.Status != fiscal.RegCompleted ||
		got.Fiscalization.FIC != reqs[0].Answer {
		t.Fatalf("invoice after restart: IIC %s, %+v; first answer %s", got.Signature.Code, got.Fiscalization, reqs[0].Answer)
	}
}

// TestHoursOffline: while the link is down (simulated clock, 5 h) the
// shop keeps issuing invoices; probing spends no attempt and sends one
// receipt.retry; the oldest invoice without FIC shows in the backlog.
// When the link is back every invoice is delivered, in issue order,
// each with one attempt and SubseqDelivType NOINTERNET.
func TestHoursOffline(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.offline.Store(true)
	var invs []fiscal.Invoice
	for range 10 {
		invs = append(invs, r.sale(300))
		r.drain(20)
		r.clk.Add(30 * time.Minute)
		r.drain(20)
	}
	if r.dials.Load() == 0 {
		t.Fatal("the worker never probed")
	}
	if n := len(r.sim.Requests()); n != 0 {
		t.Fatalf("%d requests reached the service while offline", n)
	}
	for _, inv := range invs {
		if st := r.status(inv.ID); st.Status != fiscal.RegPending || st.Attempts != 0 {
			t.Fatalf("while offline %s: %+v", inv.ID, st)
		}
	}
	if got := len(r.events(fiscal.EventReceiptRetry)); got != 1 {
		t.Fatalf("%d receipt.retry while offline, want 1", got)
	}
	b, err := r.reg.Backlog(context.Background())
	if err != nil || b.Pending != 10 || b.Oldest == nil || b.Oldest.InvoiceID != invs[0].ID || !b.Offline {
		t.Fatalf("backlog %+v %v", b, err)
	}
	r.offline.Store(false)
	r.clk.Add(10 * time.Second)
	r.drain(50)
	reqs := r.sim.Requests()
	if len(reqs) != len(invs) {
		t.Fatalf("%d requests, want %d", len(reqs), len(invs))
	}
	for i, q := range reqs {
		if q.IIC != invs[i].Signature.Code || q.SubseqDelivType != me.SubseqNoInternet {
			t.Fatalf("request %d: IIC %s %q, want %s NOINTERNET (in order)", i, q.IIC, q.SubseqDelivType, invs[i].Signature.Code)
		}
		if st := r.status(invs[i].ID); st.Status != fiscal.RegCompleted || st.Attempts != 1 {
			t.Fatalf("%s: %+v", invs[i].ID, st)
		}
	}
}

// TestDeadlineWarning: an invoice without FIC 36 h after issue raises
// fiscalization.deadline_warning once.
func TestDeadlineWarning(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.offline.Store(true)
	inv := r.sale(300)
	r.drain(5)
	r.clk.Add(35 * time.Hour)
	r.drain(5)
	if got := len(r.events(fiscal.EventDeadlineWarning)); got != 0 {
		t.Fatalf("%d warnings at 35 h", got)
	}
	r.clk.Add(time.Hour)
	r.drain(5)
	r.clk.Add(time.Hour)
	r.drain(5)
	ev := r.events(fiscal.EventDeadlineWarning)
	if len(ev) != 1 || ev[0].Data["invoice_id"] != inv.ID {
		t.Fatalf("warnings: %+v", ev)
	}
}

// TestHangDropBrokenAreTemporary: no answer in time, a dropped
// connection and a broken answer each spend an attempt and retry.
func TestHangDropBrokenAreTemporary(t *testing.T) {
	r := newRig(t, rigOptions{timeout: 300 * time.Millisecond})
	r.sim.Fail(taxservice.FaultHang, "", 1)
	r.sim.Fail(taxservice.FaultDrop, "", 1)
	r.sim.Fail(taxservice.FaultBroken, "", 1)
	r.sim.Fail(taxservice.FaultCode, "999", 1)
	inv := r.sale(300)
	for i := range 4 {
		r.drain(5)
		if st := r.status(inv.ID); st.Status != fiscal.RegPending || st.Attempts != i+1 {
			t.Fatalf("after failure %d: %+v", i+1, st)
		}
		r.clk.Add(10 * time.Minute)
	}
	r.drain(5)
	if st := r.status(inv.ID); st.Status != fiscal.RegCompleted || st.Attempts != 5 {
		t.Fatalf("final: %+v", st)
	}
	if got := len(r.events(fiscal.EventReceiptRetry)); got != 4 {
		t.Fatalf("%d receipt.retry, want 4", got)
	}
}

// TestRefusedBeforeCommit: what the service's schema would refuse is
// refused before the invoice commits, naming the field, and leaves no
// invoice, number or job behind.
func TestRefusedBeforeCommit(t *testing.T) {
	r := newRig(t, rigOptions{})
	_, err := r.inv.Create(context.Background(), fiscal.NewInvoice{Type: fiscal.TypeSale,
		Items:    []fiscal.NewItem{{Name: strings.Repeat("x", 51), Quantity: "1", UnitPrice: 100, VATRate: "21"}},
		Payments: []fiscal.NewPayment{{Type: fiscal.PayCash, Amount: 100}}},
		fiscal.Caller{KeyID: "key_test", CertificateID: r.certID})
	var ve *fiscal.ValidationError
	if !errors.As(err, &ve) || ve.Field != "items[0].name" {
		t.Fatalf("err %v, want a validation error of items[0].name", err)
	}
	var invoices, jobs int
	r.db.Read.QueryRow("SELECT COUNT(*) FROM invoices").Scan(&invoices)
	r.db.Read.QueryRow("SELECT COUNT(*) FROM fiscal_registrations").Scan(&jobs)
	if invoices != 0 || jobs != 0 {
		t.Fatalf("%d invoices, %d jobs after a refusal", invoices, jobs)
	}
	// The number was given back: the next invoice is number 1.
	if inv := r.sale(100); inv.Ordinal != 1 {
		t.Fatalf("next ordinal %d", inv.Ordinal)
	}
}

// TestRefundWaitsForItsSale: a refund is not sent while its sale's
// registration is refused; the invoices behind it go on; once the sale
// is retried and registered, the refund follows.
func TestRefundWaitsForItsSale(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.sim.Fail(taxservice.FaultCode, "44", 1)
	sale := r.sale(500)
	r.drain(5)
	refund, err := r.inv.Create(context.Background(), fiscal.NewInvoice{Type: fiscal.TypeVoid, OriginalInvoiceID: sale.ID},
		fiscal.Caller{KeyID: "key_test", CertificateID: r.certID})
	if err != nil {
		t.Fatal(err)
	}
	other := r.sale(700)
	r.drain(5)
	if st := r.status(refund.ID); st.Status != fiscal.RegPending || st.Attempts != 0 {
		t.Fatalf("refund of a refused sale: %+v", st)
	}
	if st := r.status(other.ID); st.Status != fiscal.RegCompleted {
		t.Fatalf("the invoice behind it: %+v", st)
	}
	if _, err := r.reg.Retry(context.Background(), sale.ID); err != nil {
		t.Fatal(err)
	}
	r.drain(5)
	if st := r.status(refund.ID); st.Status != fiscal.RegCompleted {
		t.Fatalf("refund after its sale: %+v", st)
	}
	reqs := r.sim.Requests()
	if last := reqs[len(reqs)-1]; last.IIC != refund.Signature.Code {
		t.Fatalf("the refund went out before its sale: %+v", reqs)
	}
}

// TestWorkerYieldsToTill: while invoices commit back to back the worker
// sends nothing; once the till is quiet it registers them all, in order.
func TestWorkerYieldsToTill(t *testing.T) {
	r := newRig(t, rigOptions{reg: func(o *fiscal.RegistrationsOptions) {
		o.Quiet, o.MaxDefer, o.Poll = 2*time.Second, time.Minute, 50*time.Millisecond
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.reg.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var invs []fiscal.Invoice
	for range 5 {
		invs = append(invs, r.sale(200))
	}
	// A poll may catch the first invoice between its commit and the
	// Wake that follows it; none after that.
	if n := len(r.sim.Requests()); n > 1 {
		t.Fatalf("%d requests while the till was busy", n)
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(r.sim.Requests()) < len(invs) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	reqs := r.sim.Requests()
	if len(reqs) != len(invs) {
		t.Fatalf("%d of %d registered after the till went quiet", len(reqs), len(invs))
	}
	for i, q := range reqs {
		if q.IIC != invs[i].Signature.Code {
			t.Fatalf("request %d out of order", i)
		}
	}
}
