package printer

import (
	"fmt"
	"strings"

	"github.com/posgate/posgate/device/datecs"
)

// ParseVATRates reads a printer's programming as technicians write it,
// "A=0,B=21,C=7,D=20": a group letter A…H and its rate in percent with at
// most two decimals, each group at most once. Groups not named are
// disabled (datecs.RateDisabled), as on a printer whose service
// technician enabled only those.
func ParseVATRates(s string) ([8]int64, error) {
	var v [8]int64
	for i := range v {
		v[i] = datecs.RateDisabled
	}
	seen := [8]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		g, rate, ok := strings.Cut(part, "=")
		g = strings.ToUpper(strings.TrimSpace(g))
		if !ok || len(g) != 1 || g[0] < 'A' || g[0] > 'H' {
			return v, fmt.Errorf("VAT rates: %q is not GROUP=PERCENT with a group A…H", part)
		}
		rate = strings.TrimSpace(rate)
		_, frac, _ := strings.Cut(rate, ".")
		r, err := datecs.ParseAmount(rate)
		if err != nil || len(frac) > 2 || r < 0 || r >= datecs.RateDisabled {
			return v, fmt.Errorf("VAT rates: %q: the rate must be 0 to 99.99 with at most 2 decimals", part)
		}
		i := g[0] - 'A'
		if seen[i] {
			return v, fmt.Errorf("VAT rates: group %s given twice", g)
		}
		seen[i], v[i] = true, r
	}
	return v, nil
}
