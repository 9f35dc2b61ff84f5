package datecs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/posgate/posgate/device"
)

// What Bulgaria needs from a fiscal printer (Наредба Н-18): the unique sale
// number (UNP) at receipt open, the document number and the fiscal QR code
// read back after close, a duplicate of the last receipt, and a clock that
// is right. The commands are those of the X programmer's manual v2.08
// ("FISCAL DEVICE DATECS … Programmer's Manual", 2019):
//
//   - 48 (30h) Open fiscal receipt, syntax 2: OpCode⇥OpPwd⇥NSale⇥TillNmb⇥Invoice⇥
//     with NSale "21 chars LLDDDDDD-CCCC-DDDDDDD, L[A-Z], C[0-9A-Za-z], D[0-9]";
//   - 74 (4Ah) Reading the Status, option '0' (current receipt status, with the
//     last fiscal receipt's QR number, amount and time) and option '1' (the
//     QR code string printed on the last fiscal document). The old ISL
//     protocol has separate commands for these, 71h (last document number)
//     and 74h (QR data); on an X printer 71h does not exist and 74h (116)
//     is "Reading FM", raw fiscal-memory bytes, so the X driver never sends them;
//   - 109 (6Dh) Print duplicate copy of receipt, no parameters;
//   - 61 (3Dh) / 62 (3Eh) Set / read date and time, "DD-MM-YY hh:mm:ss DST".

// Command codes of the Bulgarian additions.
const (
	cmdDuplicate = 0x6D
	// CmdDuplicate is 109 (6Dh) "Print duplicate copy of receipt".
	CmdDuplicate = cmdDuplicate
)

// Options of 74 (4Ah) "Reading the Status" (manual v2.08 p.23).
const (
	StatusOptionReceipt = "0" // current receipt status and the last receipt's QR fields
	StatusOptionQR      = "1" // the fiscal QR code string of the last fiscal document
)

// ErrUNP means a unique sale number is not of the form the printer accepts.
var ErrUNP = errors.New("unique sale number must be LLDDDDDD-CCCC-DDDDDDD (L A-Z, C 0-9A-Za-z, D 0-9)")

// UNPLen is the length of a unique sale number.
const UNPLen = 21

// ValidateUNP checks that s has the form of the NSale parameter of 30h and
// 2Bh: two capital letters and six digits (the fiscal device's serial
// number), a dash, four letters or digits (the operator's code), a dash,
// seven digits (the sale's sequence number). It returns an error wrapping
// ErrUNP, naming the first offending position.
func ValidateUNP(s string) error {
	if len(s) != UNPLen {
		return fmt.Errorf("%q has %d characters, want %d: %w", s, len(s), UNPLen, ErrUNP)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		var good bool
		switch {
		case i < 2:
			good = c >= 'A' && c <= 'Z'
		case i < 8, i >= 14:
			good = c >= '0' && c <= '9'
		case i == 8, i == 13:
			good = c == '-'
		default:
			good = c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		}
		if !good {
			return fmt.Errorf("%q: character %d %q: %w", s, i+1, c, ErrUNP)
		}
	}
	return nil
}

// FormatUNP builds a unique sale number from the printer's serial number
// (device.PrinterInfo.Serial, e.g. "DT000600"), an operator code of one to
// four letters or digits (zero-padded on the left) and a sequence number
// 1…9999999.
func FormatUNP(serial, operator string, seq int) (string, error) {
	if seq < 1 || seq > 9999999 {
		return "", fmt.Errorf("sequence %d not in 1…9999999: %w", seq, ErrUNP)
	}
	if len(operator) < 1 || len(operator) > 4 {
		return "", fmt.Errorf("operator code %q must have 1…4 characters: %w", operator, ErrUNP)
	}
	s := fmt.Sprintf("%s-%s-%07d", serial, strings.Repeat("0", 4-len(operator))+operator, seq)
	if err := ValidateUNP(s); err != nil {
		return "", err
	}
	return s, nil
}

// FiscalQR is the content of the QR code a Bulgarian fiscal device prints
// on every sale or storno document (Н-18, appendix 18a): fields separated
// by '*', "<fiscal memory number>*<document number>*<YYYY-MM-DD>*<hh:mm:ss>*<total>".
type FiscalQR struct {
	FiscalMemory string
	Number       int
	Time         time.Time // in the location given to ParseFiscalQR
	Amount       int64     // minor units
}

// ErrQR means a fiscal QR string is not of the form FiscalQR describes.
var ErrQR = errors.New("fiscal QR data not FM*number*YYYY-MM-DD*hh:mm:ss*amount")

// ParseFiscalQR decodes a fiscal QR string as read with 4Ah option 1.
func ParseFiscalQR(s string, loc *time.Location) (FiscalQR, error) {
	if loc == nil {
		loc = time.Local
	}
	f := strings.Split(s, "*")
	if len(f) != 5 {
		return FiscalQR{}, fmt.Errorf("%q: %d fields: %w", s, len(f), ErrQR)
	}
	var q FiscalQR
	if q.FiscalMemory = f[0]; q.FiscalMemory == "" || !allDigits(q.FiscalMemory) {
		return FiscalQR{}, fmt.Errorf("%q: fiscal memory number: %w", s, ErrQR)
	}
	if !allDigits(f[1]) || len(f[1]) > 9 {
		return FiscalQR{}, fmt.Errorf("%q: document number: %w", s, ErrQR)
	}
	q.Number, _ = strconv.Atoi(f[1])
	t, err := time.ParseInLocation("2006-01-02 15:04:05", f[2]+" "+f[3], loc)
	if err != nil {
		return FiscalQR{}, fmt.Errorf("%q: date and time: %w", s, ErrQR)
	}
	q.Time = t
	if q.Amount, err = ParseAmount(f[4]); err != nil {
		return FiscalQR{}, fmt.Errorf("%q: amount: %w", s, ErrQR)
	}
	return q, nil
}

// String encodes q as the printer prints it.
func (q FiscalQR) String() string {
	return fmt.Sprintf("%s*%07d*%s*%s", q.FiscalMemory, q.Number, q.Time.Format("2006-01-02*15:04:05"), FormatAmount(q.Amount))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// LastDocument is the answer to 74 (4Ah) option 0: the open or last
// receipt, and the fields of the last fiscal receipt's QR code.
type LastDocument struct {
	Pending       bool // lines still in the print buffer
	ReceiptStatus int  // 0 closed, 1 fiscal, 2…4 storno reasons, 5 non-fiscal open
	Number        int  // the number of the current or the last receipt
	QRAmount      int64
	QRNumber      int // the number in the last fiscal receipt's QR code
	QRTime        time.Time
}

// LastDocument reads the open or last receipt's status and the last fiscal
// receipt's QR fields with 74 (4Ah) option 0.
// Answer: PrintBufferStatus⇥ReceiptStatus⇥Number⇥QRamount⇥QRnumber⇥QRdatetime⇥.
func (p *Printer) LastDocument(ctx context.Context) (LastDocument, error) {
	f, err := p.call(ctx, cmdStatus, true, StatusOptionReceipt)
	if err != nil {
		return LastDocument{}, fmt.Errorf("read last document: %w", err)
	}
	d, err := ParseLastDocument(f, p.opts.Location)
	if err != nil {
		return LastDocument{}, fmt.Errorf("read last document: %w", err)
	}
	return d, nil
}

// ParseLastDocument decodes the fields of a 4Ah option 0 answer after its
// error field: PrintBufferStatus⇥ReceiptStatus⇥Number⇥QRamount⇥QRnumber⇥
// QRdatetime⇥. The QR fields are empty before the first fiscal receipt.
func ParseLastDocument(f []string, loc *time.Location) (LastDocument, error) {
	if loc == nil {
		loc = time.Local
	}
	var d LastDocument
	buf, err := fieldInt(cmdStatus, f, 0)
	if err == nil {
		d.Pending = buf != 0
		d.ReceiptStatus, err = fieldInt(cmdStatus, f, 1)
	}
	if err == nil {
		d.Number, err = fieldInt(cmdStatus, f, 2)
	}
	if err == nil && field(f, 3) != "" {
		d.QRAmount, err = fieldAmount(cmdStatus, f, 3)
	}
	if err == nil && field(f, 4) != "" {
		d.QRNumber, err = fieldInt(cmdStatus, f, 4)
	}
	if err == nil {
		d.QRTime, err = parseTimeIn(field(f, 5), loc)
	}
	return d, err
}

// LastQRData reads the QR code string printed on the last fiscal document
// with 74 (4Ah) option 1. Answer: QRCodeString⇥.
func (p *Printer) LastQRData(ctx context.Context) (string, error) {
	f, err := p.call(ctx, cmdStatus, true, StatusOptionQR)
	if err != nil {
		return "", fmt.Errorf("read last QR data: %w", err)
	}
	return field(f, 0), nil
}

// Duplicate prints the duplicate copy of the last receipt with 109 (6Dh).
// The printer refuses it while a receipt is open (ErrReceiptOpen or
// ErrCommandNotPermitted); Bulgarian devices print one duplicate per receipt.
func (p *Printer) Duplicate(ctx context.Context) error {
	if _, err := p.call(ctx, cmdDuplicate, false); err != nil {
		return fmt.Errorf("print duplicate: %w", err)
	}
	return nil
}

// ClockSync says what SyncClock found and did.
type ClockSync struct {
	Printer time.Time     // the printer's clock as read (3Eh)
	Host    time.Time     // the host's clock at the same moment
	Drift   time.Duration // Printer - Host
	Set     bool          // the printer's clock was set to the host's (3Dh)
}

// SyncClock reads the printer's clock (3Eh) and, when it is off the host's
// now() by more than tolerance, sets it (3Dh). An error from 3Dh (the
// printer refuses a date before its last fiscal record, or while a receipt
// is open) is returned with the ClockSync that was read.
func (p *Printer) SyncClock(ctx context.Context, now func() time.Time, tolerance time.Duration) (ClockSync, error) {
	if now == nil {
		now = time.Now
	}
	t, err := p.DateTime(ctx)
	if err != nil {
		return ClockSync{}, fmt.Errorf("sync clock: %w", err)
	}
	host := now()
	// The printer's clock has whole seconds: compare with the host's
	// truncated the same way, so a tolerance under 1 s still means something.
	cs := ClockSync{Printer: t, Host: host, Drift: t.Sub(host.Truncate(time.Second))}
	if t.IsZero() || cs.Drift > tolerance || cs.Drift < -tolerance {
		if err := p.SetDateTime(ctx, now()); err != nil {
			return cs, fmt.Errorf("sync clock: %w", err)
		}
		cs.Set = true
	}
	return cs, nil
}

// readBack fills in what a Bulgarian fiscal receipt reports after close:
// the document number (4Ah option 0) and the QR data (4Ah option 1). The QR
// is checked against the receipt: if it describes another receipt (other
// amount or fiscal memory), the read-back fails and nothing is taken from it.
func (p *Printer) readBack(ctx context.Context, res *device.ReceiptResult) error {
	d, err := p.LastDocument(ctx)
	if err != nil {
		return err
	}
	qr, err := p.LastQRData(ctx)
	if err != nil {
		return err
	}
	q, err := ParseFiscalQR(qr, p.opts.Location)
	if err != nil {
		return fmt.Errorf("read back receipt: %w", err)
	}
	if q.Amount != res.Amount || (p.info.FiscalMemory != "" && q.FiscalMemory != p.info.FiscalMemory) {
		return fmt.Errorf("read back receipt: QR %q is not of receipt %d of %s: %w",
			qr, res.Number, FormatAmount(res.Amount), ErrQR)
	}
	if d.QRNumber != 0 && d.QRNumber != q.Number {
		return fmt.Errorf("read back receipt: QR number %d, status QR number %d: %w", q.Number, d.QRNumber, ErrQR)
	}
	res.DocumentNumber, res.QRData = q.Number, qr
	if res.Time.IsZero() {
		res.Time = q.Time
	}
	return nil
}

// unp returns the unique sale number doc is printed with, "" if none.
func unp(doc device.Receipt) string {
	if doc.Storno != nil {
		return doc.Storno.UniqueSaleNumber
	}
	return doc.Header.UniqueSaleNumber
}
