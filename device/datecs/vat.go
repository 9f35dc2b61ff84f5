package datecs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/posgate/posgate/device"
)

// cmdVATRates is "Return the active VAT rates", command 50 (32h) of the
// X protocol (Datecs FMP-350X/FMP-55X/FP-700X/… Programmer's Manual
// v2.02, bg.isl.dt.x.protocol-v2.02-en.pdf p.11): no parameters; the
// answer is ErrorCode⇥nZreport⇥TaxA⇥…⇥TaxH⇥EntDate⇥, each TaxX a
// percentage 0.00…99.99, or 100.00 for a disabled group.
const cmdVATRates = 0x32

// CmdVATRates is cmdVATRates, exported for the simulator.
const CmdVATRates = cmdVATRates

// RateDisabled is the rate 32h reports for a group the printer has not
// enabled: 100.00 %, in hundredths of a percent.
const RateDisabled = 100_00

// VATRates are the rates programmed in groups A…H, in hundredths of a
// percent; RateDisabled marks a group that takes no sales.
type VATRates [8]int64

// Group returns the lowest group 1…8 programmed at rate (hundredths of a
// percent), and false if the printer has none.
func (v VATRates) Group(rate int64) (int, bool) {
	if rate < 0 || rate >= RateDisabled {
		return 0, false
	}
	for g, r := range v {
		if r == rate {
			return g + 1, true
		}
	}
	return 0, false
}

// String lists the enabled groups, e.g. "A 0.00%, B 21.00%".
func (v VATRates) String() string {
	var parts []string
	for g, r := range v {
		if r < RateDisabled {
			parts = append(parts, fmt.Sprintf("%c %s%%", 'A'+g, FormatAmount(r)))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// ErrVATRate is a receipt item whose VAT rate is not the rate its group
// is programmed at on this printer; nothing of the receipt was sent.
var ErrVATRate = errors.New("the printer's VAT group has another rate")

// VATRates reads the programmed VAT rates with 32h.
func (p *Printer) VATRates(ctx context.Context) (VATRates, error) {
	f, err := p.call(ctx, cmdVATRates, true)
	if err != nil {
		return VATRates{}, fmt.Errorf("read VAT rates: %w", err)
	}
	v, err := ParseVATAnswer(f)
	if err != nil {
		return VATRates{}, fmt.Errorf("read VAT rates: %w", err)
	}
	return v, nil
}

// ParseVATAnswer reads the fields of a 32h answer after its error code:
// nZreport⇥TaxA⇥…⇥TaxH⇥EntDate⇥ (Fields splits DATA into them).
func ParseVATAnswer(f []string) (VATRates, error) {
	if len(f) < 9 {
		return VATRates{}, fmt.Errorf("32h answer has %d fields after the error code, want 10", len(f))
	}
	var v VATRates
	for g := range v {
		s := strings.TrimSpace(f[1+g])
		r, err := ParseAmount(s)
		if _, frac, _ := strings.Cut(s, "."); err != nil || len(frac) > 2 || r < 0 || r > RateDisabled {
			return VATRates{}, fmt.Errorf("32h answer: group %c: bad rate %q", 'A'+g, f[1+g])
		}
		v[g] = r
	}
	return v, nil
}

// Rates returns the VAT rates read when the printer was opened.
func (p *Printer) Rates() VATRates { return p.rates }

// ProgrammedRates is Rates for fiscal.RatesPrinter.
func (p *Printer) ProgrammedRates(context.Context) ([8]int64, error) { return p.rates, nil }

// checkRates refuses a document with an item whose VATRate is set and is
// not its group's programmed rate: printed, it would show another VAT
// than the signed invoice.
func (p *Printer) checkRates(lines []device.Line) error {
	for i, l := range lines {
		it := l.Item
		if it.Name == "" || it.VATRate == nil || it.VATGroup < 1 || it.VATGroup > 8 {
			continue
		}
		if got := p.rates[it.VATGroup-1]; got != *it.VATRate {
			return fmt.Errorf("line %d: %w: group %c is %s%%, the item %s%% (printer: %s)", i+1, ErrVATRate,
				'A'+it.VATGroup-1, FormatAmount(got), FormatAmount(*it.VATRate), p.rates)
		}
	}
	return nil
}
