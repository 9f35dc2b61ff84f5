package printer

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/posgate/posgate/device/datecs"
)

// Error codes the simulator puts in an answer's error field. They are the
// simulator's own, in the range real X printers use (-111xxx); real
// firmware has its own list (command 64h explains a code on both).
const (
	CodeSyntax         = -111001
	CodeInvalidCommand = -111002
	CodeNotPermitted   = -111003
	CodeReceiptOpen    = -111004
	CodeNoReceipt      = -111005
	CodePaperOut       = -111006
	CodeCoverOpen      = -111007
	CodeOverflow       = -111008
	CodeNotPaid        = -111009
	CodeNoCash         = -111010
	// CodeUNPUsed refuses a unique sale number that an earlier closed sale
	// receipt carried. The X manual does not document the check; the
	// simulator makes it because a UNP names one sale (Н-18), so software
	// that reuses one has a bug a test should see.
	CodeUNPUsed = -111011
	// CodeNoDuplicate refuses 6Dh when there is no last fiscal receipt or
	// its one duplicate was printed already.
	CodeNoDuplicate = -111012
)

var codeText = map[int]string{
	CodeSyntax:         "Syntax error",
	CodeInvalidCommand: "Invalid command",
	CodeNotPermitted:   "Command not permitted",
	CodeReceiptOpen:    "Receipt is open",
	CodeNoReceipt:      "No receipt is open",
	CodePaperOut:       "End of paper",
	CodeCoverOpen:      "Cover is open",
	CodeOverflow:       "Overflow",
	CodeNotPaid:        "Receipt not paid",
	CodeNoCash:         "Not enough cash",
	CodeUNPUsed:        "Unique sale number already used",
	CodeNoDuplicate:    "No receipt to duplicate",
}

// state is the printer's memory. The Printer's mu guards it.
type state struct {
	vat         [8]int64
	clockOffset time.Duration
	slip        int
	fiscalNo    int
	zNo         int
	lastTime    time.Time // last fiscal receipt
	lastBody    []string  // the body lines of lastFiscal, for its duplicate
	lastZTime   time.Time
	last        struct {
		items        int
		amount, paid int64
	}
	dayTotals [8]int64
	dayStorno [8]int64
	cashSum   int64
	cashIn    int64
	cashOut   int64
	// the last closed fiscal or storno receipt, for 4Ah options 0/1 and 6Dh
	lastFiscal *Document
	duplicated bool            // lastFiscal's duplicate was printed
	usedUNP    map[string]bool // UNPs of closed sale receipts
	rec        *receipt        // open fiscal or storno receipt
	nonFiscal  *Document       // open non-fiscal receipt
	journal    []Document
	// journalMax bounds journal; see Options.Journal.
	journalMax int
}

// keep adds d to the journal. Past journalMax documents the oldest
// quarter goes, so a long run holds at most journalMax documents and
// dropping costs one copy per journalMax/4 documents.
func (s *state) keep(d Document) {
	s.journal = append(s.journal, d)
	if len(s.journal) <= s.journalMax {
		return
	}
	drop := len(s.journal) - s.journalMax*3/4
	n := copy(s.journal, s.journal[drop:])
	clear(s.journal[n:]) // let the dropped texts go
	s.journal = s.journal[:n]
}

type receipt struct {
	doc    Document
	reason int // storno reason
	items  int
	paid   int64
	lines  []string
}

// result is the outcome of one command.
type result struct {
	data []byte
	code int
	bits []datecs.Bit
	doc  *Document // a document finished by the command
}

func ok(fields ...string) result {
	return result{data: datecs.Params(append([]string{"0"}, fields...)...)}
}

func fail(code int, bits ...datecs.Bit) result {
	return result{data: datecs.Params(strconv.Itoa(code)), code: code, bits: bits}
}

var (
	errSyntax       = fail(CodeSyntax, datecs.BitSyntax)
	errNotPermitted = fail(CodeNotPermitted, datecs.BitNotPermitted)
	errReceiptOpen  = fail(CodeReceiptOpen, datecs.BitNotPermitted)
	errNoReceipt    = fail(CodeNoReceipt, datecs.BitNotPermitted)
)

// printing lists the commands that move paper.
var printing = map[uint16]bool{
	datecs.CmdOpen: true, datecs.CmdStorno: true, datecs.CmdSale: true, datecs.CmdSubtotal: true,
	datecs.CmdPayment: true, datecs.CmdFiscalText: true, datecs.CmdClose: true, datecs.CmdCancel: true,
	datecs.CmdNonFiscalOpen: true, datecs.CmdNonFiscalText: true, datecs.CmdNonFiscalClose: true,
	datecs.CmdReport: true, datecs.CmdDuplicate: true,
}

func (p *Printer) now() time.Time {
	return p.opts.Now().Add(p.st.clockOffset).In(p.opts.Location)
}

// exec runs one request. Caller must hold mu.
func (p *Printer) exec(cmd uint16, data []byte) result {
	if printing[cmd] || (cmd == datecs.CmdCash && len(data) > 0 && !isZeroCash(data)) {
		if p.paperLeft == 0 {
			p.paperOut, p.paperLeft = true, -1
		}
		switch {
		case p.coverOpen:
			return fail(CodeCoverOpen, datecs.BitCoverOpen)
		case p.paperOut:
			return fail(CodePaperOut, datecs.BitPaperOut)
		}
		if p.paperLeft > 0 {
			p.paperLeft--
		}
	}
	f := datecs.Fields(data)
	s := &p.st
	switch cmd {
	case datecs.CmdStatus:
		return p.status(field(f, 0))
	case datecs.CmdDuplicate:
		return p.duplicate()
	case datecs.CmdInfo:
		if len(data) > 0 && data[len(data)-1] != '\t' {
			// The legacy comma answer, what ErpNet.FP's probe asks for.
			return result{data: []byte(strings.Join([]string{p.opts.Model, p.opts.Firmware, "ABCD", "0",
				p.opts.Serial, p.opts.FiscalMemory}, ","))}
		}
		fw := strings.Fields(p.opts.Firmware + "  ")
		for len(fw) < 3 {
			fw = append(fw, "")
		}
		return ok(p.opts.Model, fw[0], fw[1], fw[2], "ABCD", "0", p.opts.Serial, p.opts.FiscalMemory)
	case datecs.CmdOpen, datecs.CmdStorno:
		return p.open(cmd, f)
	case datecs.CmdSale:
		return p.sale(f)
	case datecs.CmdSubtotal:
		return p.subtotal(f)
	case datecs.CmdPayment:
		return p.payment(f)
	case datecs.CmdFiscalText:
		if s.rec == nil {
			return errNoReceipt
		}
		s.rec.doc.Comments = append(s.rec.doc.Comments, field(f, 0))
		s.rec.lines = append(s.rec.lines, field(f, 0))
		return ok()
	case datecs.CmdClose:
		return p.close()
	case datecs.CmdCancel:
		if s.rec == nil {
			return errNoReceipt
		}
		if s.rec.paid > 0 {
			return errNotPermitted // only before the first payment
		}
		d := s.rec.doc
		d.Cancelled = true
		d.Time = p.now()
		d.Text = render(p.opts, d, s.rec.lines, "*** CANCELLED ***")
		s.keep(d)
		s.rec = nil
		return result{data: datecs.Params("0"), doc: &d}
	case datecs.CmdNonFiscalOpen:
		if s.rec != nil || s.nonFiscal != nil {
			return errReceiptOpen
		}
		s.slip++
		s.nonFiscal = &Document{Kind: KindNonFiscal, Slip: s.slip}
		return ok(strconv.Itoa(s.slip))
	case datecs.CmdNonFiscalText:
		if s.nonFiscal == nil {
			return errNoReceipt
		}
		s.nonFiscal.Comments = append(s.nonFiscal.Comments, field(f, 0))
		return ok()
	case datecs.CmdNonFiscalClose:
		if s.nonFiscal == nil {
			return errNoReceipt
		}
		d := *s.nonFiscal
		d.Time = p.now()
		d.Text = render(p.opts, d, d.Comments, "NON-FISCAL RECEIPT")
		s.keep(d)
		s.nonFiscal = nil
		return result{data: datecs.Params("0", strconv.Itoa(d.Slip)), doc: &d}
	case datecs.CmdSetDateTime:
		t, err := time.ParseInLocation(datecs.DateLayout, strings.TrimSuffix(strings.TrimSpace(field(f, 0)), " DST"), p.opts.Location)
		if err != nil {
			return errSyntax
		}
		s.clockOffset = t.Sub(p.opts.Now())
		return ok()
	case datecs.CmdDateTime:
		// "DD-MM-YY hh:mm:ss DST", DST when summer time is in force (manual v2.08, 62 (3Eh)).
		now := p.now()
		if now.IsDST() {
			return ok(now.Format(datecs.DateLayout) + " DST")
		}
		return ok(now.Format(datecs.DateLayout))
	case datecs.CmdReport:
		return p.report(field(f, 0))
	case datecs.CmdCash:
		return p.cash(f)
	case datecs.CmdTransaction:
		if s.rec != nil {
			open := 1
			if s.rec.doc.Kind == KindStorno {
				open = 2 + s.rec.reason
			}
			return ok(strconv.Itoa(open), strconv.Itoa(s.fiscalNo+1), strconv.Itoa(s.rec.items),
				datecs.FormatAmount(s.rec.doc.Total), datecs.FormatAmount(s.rec.paid))
		}
		return ok("0", strconv.Itoa(s.fiscalNo), strconv.Itoa(s.last.items),
			datecs.FormatAmount(s.last.amount), datecs.FormatAmount(s.last.paid))
	case datecs.CmdVATRates:
		// nZreport⇥TaxA⇥…⇥TaxH⇥EntDate⇥ (X manual, command 50 (32h)):
		// the rates are the simulator's programming, valid from Z report 1.
		fields := []string{"1"}
		for _, r := range s.vat {
			fields = append(fields, datecs.FormatAmount(r))
		}
		return ok(append(fields, p.now().Format("02-01-06"))...)
	case datecs.CmdLastReceipt:
		return ok(strconv.Itoa(s.fiscalNo), formatTime(s.lastTime), strconv.Itoa(s.zNo), formatTime(s.lastZTime))
	case 0x64: // explain an error code
		code, err := strconv.Atoi(field(f, 0))
		if err != nil {
			return errSyntax
		}
		return ok(strconv.Itoa(code), codeText[code])
	}
	return fail(CodeInvalidCommand, datecs.BitInvalidCmd)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(datecs.DateLayout)
}

func isZeroCash(data []byte) bool {
	v, err := datecs.ParseAmount(field(datecs.Fields(data), 1))
	return err == nil && v == 0
}

func field(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

func (p *Printer) open(cmd uint16, f []string) result {
	s := &p.st
	if s.rec != nil || s.nonFiscal != nil {
		return errReceiptOpen
	}
	r := &receipt{doc: Document{Kind: KindFiscal}}
	switch {
	case cmd == datecs.CmdStorno:
		// OpCode⇥OpPwd⇥TillNmb⇥Storno⇥DocNum⇥DateTime⇥FMNumber⇥Invoice⇥ToInvoice⇥Reason⇥NSale⇥
		reason, err := strconv.Atoi(field(f, 3))
		if err != nil || reason < 0 || reason > 2 || len(f) < 7 {
			return errSyntax
		}
		r.doc.Kind, r.reason = KindStorno, reason
		r.doc.UniqueSaleNumber = field(f, 10)
		if u := r.doc.UniqueSaleNumber; u != "" && datecs.ValidateUNP(u) != nil {
			return errSyntax
		}
		r.lines = append(r.lines, fmt.Sprintf("STORNO of No %s %s", field(f, 4), field(f, 5)))
	case len(f) >= 5:
		// OpCode⇥OpPwd⇥NSale⇥TillNmb⇥Invoice⇥ (syntax 2 of 30h)
		if datecs.ValidateUNP(f[2]) != nil {
			return errSyntax
		}
		if s.usedUNP[f[2]] {
			return fail(CodeUNPUsed, datecs.BitNotPermitted)
		}
		r.doc.UniqueSaleNumber = f[2]
	case len(f) == 4:
		// OpCode⇥OpPwd⇥TillNmb⇥Invoice⇥
	default:
		return errSyntax
	}
	if _, err := strconv.Atoi(field(f, 0)); err != nil {
		return errSyntax
	}
	s.slip++
	r.doc.Slip = s.slip
	s.rec = r
	return ok(strconv.Itoa(s.slip))
}

// applyModifier applies a discount type 1…4 with its value to v.
func applyModifier(v int64, kind, value string) (int64, bool) {
	if kind == "" || kind == "0" {
		return v, true
	}
	x, err := datecs.ParseAmount(value)
	if err != nil || x < 0 {
		return 0, false
	}
	switch kind {
	case "1":
		return v + datecs.RoundDiv(v*x, 10000), true
	case "2":
		return v - datecs.RoundDiv(v*x, 10000), true
	case "3":
		return v + x, true
	case "4":
		return v - x, true
	}
	return 0, false
}

func (p *Printer) sale(f []string) result {
	s := &p.st
	if s.rec == nil {
		return errNoReceipt
	}
	if s.rec.paid > 0 {
		return errNotPermitted
	}
	// PluName⇥TaxCd⇥Price⇥Quantity⇥DiscountType⇥DiscountValue⇥Department⇥
	name := field(f, 0)
	group, err := strconv.Atoi(field(f, 1))
	if name == "" || err != nil || group < 1 || group > 8 {
		return errSyntax
	}
	if s.vat[group-1] >= datecs.RateDisabled {
		return errNotPermitted // a group the printer has not enabled
	}
	price, err := datecs.ParseAmount(field(f, 2))
	if err != nil || price < 0 {
		return errSyntax
	}
	qty := int64(1000)
	if q := field(f, 3); q != "" {
		if qty, err = datecs.ParseQty(q); err != nil || qty <= 0 {
			return errSyntax
		}
	}
	gross := datecs.RoundDiv(price*qty, 1000)
	amount, good := applyModifier(gross, field(f, 4), field(f, 5))
	if !good {
		return errSyntax
	}
	if amount < 0 || amount > 1e11 {
		return fail(CodeOverflow, datecs.BitOverflow)
	}
	r := s.rec
	r.items++
	r.doc.Items = append(r.doc.Items, Item{Name: name, Group: group, Price: price, Quantity: qty, Amount: amount})
	r.doc.Groups[group-1] += amount
	r.doc.Total += amount
	if qty != 1000 {
		r.lines = append(r.lines, fmt.Sprintf("  %s x %s", datecs.FormatQty(qty), datecs.FormatAmount(price)))
	}
	r.lines = append(r.lines, twoCols(name, datecs.FormatAmount(gross)+" "+string(rune('A'+group-1))))
	if amount != gross {
		r.lines = append(r.lines, twoCols("  discount/surcharge", datecs.FormatAmount(amount-gross)))
	}
	return ok(strconv.Itoa(r.doc.Slip))
}

func (p *Printer) subtotal(f []string) result {
	s := &p.st
	if s.rec == nil {
		return errNoReceipt
	}
	r := s.rec
	kind := field(f, 2)
	if kind != "" && kind != "0" {
		if r.paid > 0 || r.doc.Total <= 0 {
			return errNotPermitted
		}
		newTotal, good := applyModifier(r.doc.Total, kind, field(f, 3))
		if !good {
			return errSyntax
		}
		if newTotal < 0 {
			return fail(CodeOverflow, datecs.BitOverflow)
		}
		// Spread the change over the groups in proportion; the last group
		// with turnover takes the rounding rest.
		delta, lastG := newTotal-r.doc.Total, -1
		var spread int64
		for g, a := range r.doc.Groups {
			if a == 0 {
				continue
			}
			share := datecs.RoundDiv(delta*a, r.doc.Total)
			r.doc.Groups[g] += share
			spread += share
			lastG = g
		}
		r.doc.Groups[lastG] += delta - spread
		r.lines = append(r.lines, twoCols("SUBTOTAL", datecs.FormatAmount(r.doc.Total)))
		r.lines = append(r.lines, twoCols("  discount/surcharge", datecs.FormatAmount(delta)))
		r.doc.Total = newTotal
	} else {
		r.lines = append(r.lines, twoCols("SUBTOTAL", datecs.FormatAmount(r.doc.Total)))
	}
	out := []string{strconv.Itoa(r.doc.Slip), datecs.FormatAmount(r.doc.Total)}
	for _, a := range r.doc.Groups {
		out = append(out, datecs.FormatAmount(a))
	}
	return ok(out...)
}

var payNames = []string{"CASH", "CREDIT CARD", "DEBIT CARD", "PAYMENT 3", "PAYMENT 4", "PAYMENT 5"}

func (p *Printer) payment(f []string) result {
	s := &p.st
	if s.rec == nil {
		return errNoReceipt
	}
	r := s.rec
	// PaidMode⇥Amount⇥Type⇥; an empty mode and amount pay the rest in cash.
	mode := 0
	if m := field(f, 0); m != "" {
		var err error
		if mode, err = strconv.Atoi(m); err != nil || mode < 0 || mode > 5 {
			return errSyntax
		}
	}
	due := r.doc.Total - r.paid
	if r.items == 0 || due <= 0 {
		return errNotPermitted
	}
	amount := due
	if a := field(f, 1); a != "" {
		var err error
		if amount, err = datecs.ParseAmount(a); err != nil || amount <= 0 {
			return errSyntax
		}
	}
	if amount > due && mode != 0 {
		return errNotPermitted // only cash gives change
	}
	if r.paid == 0 {
		// The first payment ends the sales: print the total and its VAT.
		r.lines = append(r.lines, twoCols("TOTAL", datecs.FormatAmount(r.doc.Total)))
		for g, a := range r.doc.Groups {
			if a != 0 {
				rate := s.vat[g]
				tax := datecs.RoundDiv(a*rate, 10000+rate)
				r.lines = append(r.lines, twoCols(fmt.Sprintf("  VAT %c %s%%", 'A'+g, datecs.FormatAmount(rate)), datecs.FormatAmount(tax)))
			}
		}
	}
	r.paid += amount
	r.doc.Payments = append(r.doc.Payments, Payment{Mode: mode, Amount: amount})
	r.lines = append(r.lines, twoCols(payNames[mode], datecs.FormatAmount(amount)))
	if mode == 0 {
		s.cashSum += min(amount, due)
	}
	if amount >= due {
		r.doc.Change = amount - due
		if r.doc.Change > 0 {
			r.lines = append(r.lines, twoCols("CHANGE", datecs.FormatAmount(r.doc.Change)))
		}
		return ok("R", datecs.FormatAmount(r.doc.Change))
	}
	return ok("D", datecs.FormatAmount(due-amount))
}

func (p *Printer) close() result {
	s := &p.st
	if s.rec == nil {
		return errNoReceipt
	}
	r := s.rec
	if r.items == 0 || r.paid < r.doc.Total {
		return fail(CodeNotPaid, datecs.BitNotPermitted)
	}
	s.fiscalNo++
	d := r.doc
	d.Number = s.fiscalNo
	d.Time = p.now()
	for g, a := range d.Groups {
		if d.Kind == KindStorno {
			s.dayStorno[g] += a
		} else {
			s.dayTotals[g] += a
		}
	}
	title := "FISCAL RECEIPT"
	if d.Kind == KindStorno {
		title = "STORNO RECEIPT"
	}
	// The fiscal QR code goes at the end of every sale or storno document,
	// just before its title (Н-18 appendix 18a).
	d.QR = datecs.FiscalQR{FiscalMemory: p.opts.FiscalMemory, Number: d.Number, Time: d.Time, Amount: d.Total}.String()
	d.Text = render(p.opts, d, r.lines, fmt.Sprintf("%s No %07d", title, d.Number))
	s.keep(d)
	if d.Kind == KindFiscal && d.UniqueSaleNumber != "" {
		if s.usedUNP == nil {
			s.usedUNP = make(map[string]bool)
		}
		s.usedUNP[d.UniqueSaleNumber] = true
	}
	last := d
	last.Text = ""
	s.lastFiscal, s.duplicated = &last, false
	s.lastBody = slices.Clone(r.lines)
	s.last.items, s.last.amount, s.last.paid = r.items, d.Total, r.paid
	s.lastTime = d.Time
	s.rec = nil
	return result{data: datecs.Params("0", strconv.Itoa(d.Slip)), doc: &d}
}

func (p *Printer) report(kind string) result {
	s := &p.st
	if kind != "X" && kind != "Z" {
		return errSyntax
	}
	if s.rec != nil || s.nonFiscal != nil {
		return errReceiptOpen
	}
	s.slip++
	n := s.zNo + 1
	d := Document{Kind: KindXReport, Slip: s.slip, Time: p.now()}
	out := []string{strconv.Itoa(n)}
	lines := []string{}
	for g, a := range s.dayTotals {
		out = append(out, datecs.FormatAmount(a))
		lines = append(lines, twoCols(fmt.Sprintf("TURNOVER %c", 'A'+g), datecs.FormatAmount(a)))
		d.Groups[g] = a
		d.Total += a
	}
	for g, a := range s.dayStorno {
		out = append(out, datecs.FormatAmount(a))
		lines = append(lines, twoCols(fmt.Sprintf("STORNO %c", 'A'+g), datecs.FormatAmount(a)))
	}
	lines = append(lines, twoCols("CASH IN", datecs.FormatAmount(s.cashIn)), twoCols("CASH OUT", datecs.FormatAmount(s.cashOut)),
		twoCols("RECEIPTS", strconv.Itoa(s.fiscalNo)))
	title := fmt.Sprintf("X REPORT (next Z %04d)", n)
	if kind == "Z" {
		s.zNo = n
		s.lastZTime = d.Time
		d.Kind, d.Number = KindZReport, n
		title = fmt.Sprintf("Z REPORT No %04d", n)
		s.dayTotals, s.dayStorno = [8]int64{}, [8]int64{}
		s.cashIn, s.cashOut = 0, 0
	}
	d.Text = render(p.opts, d, lines, title)
	s.keep(d)
	return result{data: datecs.Params(append([]string{"0"}, out...)...), doc: &d}
}

func (p *Printer) cash(f []string) result {
	s := &p.st
	kind, err := strconv.Atoi(field(f, 0))
	if err != nil || kind < 0 || kind > 1 {
		return errSyntax
	}
	amount, err := datecs.ParseAmount(field(f, 1))
	if err != nil || amount < 0 {
		return errSyntax
	}
	var doc *Document
	if amount > 0 {
		if s.rec != nil || s.nonFiscal != nil {
			return errReceiptOpen
		}
		if kind == 1 && amount > s.cashSum {
			return fail(CodeNoCash, datecs.BitNotPermitted)
		}
		s.slip++
		d := Document{Kind: KindCashIn, Slip: s.slip, Total: amount, Time: p.now()}
		if kind == 0 {
			s.cashSum += amount
			s.cashIn += amount
		} else {
			d.Kind = KindCashOut
			s.cashSum -= amount
			s.cashOut += amount
		}
		d.Text = render(p.opts, d, []string{twoCols(strings.ToUpper(string(d.Kind)), datecs.FormatAmount(amount))}, "SERVICE")
		s.keep(d)
		doc = &d
	}
	r := ok(datecs.FormatAmount(s.cashSum), datecs.FormatAmount(s.cashIn), datecs.FormatAmount(s.cashOut))
	r.doc = doc
	return r
}

// status answers 74 (4Ah) "Reading the Status" (manual v2.08 p.23): no
// option, the status bytes only (they travel in every answer); option 0,
// PrintBufferStatus⇥ReceiptStatus⇥Number⇥QRamount⇥QRnumber⇥QRdatetime⇥;
// option 1, the QR code string of the last fiscal document.
func (p *Printer) status(option string) result {
	s := &p.st
	switch option {
	case "":
		return ok()
	case datecs.StatusOptionReceipt:
		open, number := "0", s.fiscalNo
		switch {
		case s.rec != nil && s.rec.doc.Kind == KindStorno:
			open, number = strconv.Itoa(2+s.rec.reason), s.fiscalNo+1
		case s.rec != nil:
			open, number = "1", s.fiscalNo+1
		case s.nonFiscal != nil:
			open = "5"
		}
		qrAmount, qrNumber, qrTime := "", "", ""
		if l := s.lastFiscal; l != nil {
			qrAmount, qrNumber, qrTime = datecs.FormatAmount(l.Total), strconv.Itoa(l.Number), formatTime(l.Time)
		}
		return ok("0", open, strconv.Itoa(number), qrAmount, qrNumber, qrTime)
	case datecs.StatusOptionQR:
		if s.lastFiscal == nil {
			return ok("")
		}
		return ok(s.lastFiscal.QR)
	}
	return errSyntax
}

// duplicate prints the duplicate copy of the last fiscal receipt, 109
// (6Dh). It is refused while a receipt is open and, as Bulgarian devices
// allow one copy per receipt, for a receipt already duplicated. The copy
// carries no QR code (Н-18 appendix 18a: copies have none).
func (p *Printer) duplicate() result {
	s := &p.st
	if s.rec != nil || s.nonFiscal != nil {
		return errReceiptOpen
	}
	if s.lastFiscal == nil || s.duplicated {
		return fail(CodeNoDuplicate, datecs.BitNotPermitted)
	}
	s.slip++
	d := *s.lastFiscal
	d.Kind, d.Slip, d.QR, d.Duplicate = KindDuplicate, s.slip, "", true
	d.Text = render(p.opts, d, s.lastBody, fmt.Sprintf("DUPLICATE OF No %07d", d.Number))
	s.keep(d)
	s.duplicated = true
	return result{data: datecs.Params("0"), doc: &d}
}
