package terminal

import (
	"fmt"
	"sort"
	"strings"

	"github.com/posgate/posgate/device/zvt"
)

// Quirk is one way a terminal's firmware deviates from PA00P015. A profile
// is a named set of quirks (Options.Profile, `posgate sim terminal
// --profile NAME`); docs/zvt.md has the table and how the driver copes.
type Quirk string

// Quirks.
const (
	// QuirkNack1E: commands the firmware does not offer are refused with
	// 84 1E <result-code> (the error form of §2.1) instead of 84 83 00.
	QuirkNack1E Quirk = "nack-1e"
	// QuirkNotSupported: pre-authorisation, its bookings, Diagnosis and
	// Send Turnover Totals are refused with 84 83 00 (function not
	// possible), as firmware without those functions does.
	QuirkNotSupported Quirk = "not-supported"
	// QuirkRepeatNoStatus: Repeat Receipt ignores service-byte bit 0 and
	// never sends the Status-Information again, only the receipt.
	QuirkRepeatNoStatus Quirk = "repeat-no-status"
	// QuirkNoTextBlock: receipts always come as Print Lines, whatever the
	// tag 26 list permitted.
	QuirkNoTextBlock Quirk = "no-text-block"
	// QuirkTLVUnasked: Status-Information carries a TLV container even to
	// an ECR that registered without one (research §1.11: Hobex).
	QuirkTLVUnasked Quirk = "tlv-unasked"
	// QuirkAbortIgnored: Abort 06 B0 is acknowledged and has no effect
	// (research §1.11: Global Payments).
	QuirkAbortIgnored Quirk = "abort-ignored"
)

// profiles maps a profile name to its quirks.
var profiles = map[string][]Quirk{
	"":                 nil,
	"spec":             nil,
	"nack-1e":          {QuirkNack1E, QuirkNotSupported},
	"not-supported":    {QuirkNotSupported},
	"repeat-no-status": {QuirkRepeatNoStatus},
	"no-text-block":    {QuirkNoTextBlock},
	"tlv-unasked":      {QuirkTLVUnasked},
	"abort-ignored":    {QuirkAbortIgnored},
}

// Profiles lists the profile names.
func Profiles() []string {
	var out []string
	for n := range profiles {
		if n != "" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// CheckProfile reports an unknown profile name.
func CheckProfile(name string) error {
	if _, ok := profiles[name]; !ok {
		return fmt.Errorf("unknown terminal profile %q (known: %s)", name, strings.Join(Profiles(), ", "))
	}
	return nil
}

// quirk reports whether the simulator's profile has q.
func (s *Simulator) quirk(q Quirk) bool {
	for _, x := range profiles[s.opts.Profile] {
		if x == q {
			return true
		}
	}
	return false
}

// quirkFor returns the refusal a profile gives cmd in place of running it.
func (s *Simulator) quirkFor(cmd zvt.APDU) (zvt.APDU, bool) {
	switch cmd.Command() {
	case zvt.CmdPreAuth, zvt.CmdPartialReversal, zvt.CmdBookTotal, zvt.CmdPreAuthReversal,
		zvt.CmdDiagnosis, zvt.CmdTurnoverTotals, zvt.CmdReadCard:
	default:
		return zvt.APDU{}, false
	}
	switch {
	case s.quirk(QuirkNack1E):
		return zvt.APDU{Class: 0x84, Instr: 0x1E, Data: []byte{0x83}}, true
	case s.quirk(QuirkNotSupported):
		return zvt.Nack(0x83), true
	}
	return zvt.APDU{}, false
}
