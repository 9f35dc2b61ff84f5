package fiscal

import (
	"encoding/json"
	"math/bits"
	"sort"
)

// Rounding, documented in docs/fiscal.md:
//
//   - a line's amount is quantity × unit price rounded half away from
//     zero to the minor unit, less the line's discount;
//   - prices include VAT; per VAT rate, the net is the rate's summed
//     gross ÷ (1 + rate) rounded half away from zero, and the VAT is gross
//     less net, so net + VAT always equals the gross exactly;
//   - the total is the sum of the lines; a refund or void negates every
//     amount, and rounds the same way on the magnitudes.

// lineGross is quantity (thousandths) × price (minor units), rounded half
// away from zero to the minor unit. Bounds in validate keep it in range.
func lineGross(qty, price int64) int64 {
	return divRound(qty*price, 1000)
}

// divRound is a / b rounded half away from zero, for b > 0.
func divRound(a, b int64) int64 {
	if a < 0 {
		return -divRound(-a, b)
	}
	return (a + b/2) / b
}

// mulDivRound is a × m / d rounded half away from zero, for a ≥ 0,
// m ≥ 0 and d > 0, with a 128-bit intermediate so that a large gross
// times 10000 cannot overflow. The result fits: m ≤ d at every call.
func mulDivRound(a, m, d int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(m))
	lo, carry := bits.Add64(lo, uint64(d/2), 0)
	hi += carry
	q, _ := bits.Div64(hi, lo, uint64(d))
	return int64(q)
}

// computeTotals sums items per VAT rate and overall. sign is +1 for a
// sale and -1 for a refund or void: item amounts and payments come in
// positive and leave with the sign applied.
func computeTotals(items []Item, pays []Payment, sign int64) Totals {
	byRate := map[int64]*RateTotal{}
	var rates []int64
	var t Totals
	for _, it := range items {
		rt, ok := byRate[it.rate]
		if !ok {
			rt = &RateTotal{VATRate: json.Number(formatDecimal(it.rate, 2))}
			byRate[it.rate] = rt
			rates = append(rates, it.rate)
		}
		rt.Gross += it.Amount
	}
	sort.Slice(rates, func(i, j int) bool { return rates[i] > rates[j] })
	t.PerRate = []RateTotal{}
	for _, r := range rates {
		rt := byRate[r]
		rt.Net = mulDivRound(rt.Gross, 10000, 10000+r)
		rt.VAT = rt.Gross - rt.Net
		rt.Gross, rt.Net, rt.VAT = sign*rt.Gross, sign*rt.Net, sign*rt.VAT
		t.Total += rt.Gross
		t.Net += rt.Net
		t.VAT += rt.VAT
		t.PerRate = append(t.PerRate, *rt)
	}
	for _, p := range pays {
		t.Paid += sign * p.Amount
	}
	t.Change = t.Paid - t.Total
	return t
}
