package payment

// MaxAmount is the largest amount a terminal takes: 12 BCD digits.
const MaxAmount = 999_999_999_999

// validate checks a request on its own and fills defaults.
func validate(req *NewPayment) error {
	switch req.Type {
	case TypeSale, TypeRefund:
		if req.Amount <= 0 || req.Amount > MaxAmount {
			return invalid("amount", "must be 1 to %d minor units (1234 = 12.34)", int64(MaxAmount))
		}
	case TypeReversal:
		if req.OriginalPaymentID == "" {
			return invalid("original_payment_id", "is required for a reversal")
		}
		if req.Amount < 0 || req.Amount > MaxAmount {
			return invalid("amount", "must be the original amount or left out")
		}
	case TypePreAuth, TypePreAuthCompletion, TypePreAuthReversal, TypePreAuthPartialReversal:
		if err := validatePreAuth(req); err != nil {
			return err
		}
	case "":
		return invalid("type", "is required: sale, refund, reversal, preauth, preauth_completion, preauth_partial_reversal or preauth_reversal")
	default:
		return invalid("type", "must be sale, refund, reversal, preauth, preauth_completion, preauth_partial_reversal or preauth_reversal")
	}
	if req.Type == TypeSale && req.OriginalPaymentID != "" {
		return invalid("original_payment_id", "is only for a refund or a reversal")
	}
	if req.Currency != "" && !isCurrency(req.Currency) {
		return invalid("currency", "must be an ISO 4217 code such as EUR")
	}
	if len(req.Reference) > 128 {
		return invalid("reference", "must be at most 128 bytes")
	}
	for _, c := range req.Reference {
		if c < 0x20 || c == 0x7f {
			return invalid("reference", "must not contain control characters")
		}
	}
	if len(req.TerminalID) > 64 {
		return invalid("terminal_id", "must be at most 64 bytes")
	}
	return nil
}

// checkAgainst checks a request against its terminal and the payment it
// refers to, and fills the amount and currency a reversal takes from it.
func checkAgainst(req *NewPayment, t Terminal, orig *record) error {
	if req.Currency == "" {
		req.Currency = t.Currency
	}
	if isPreAuthType(req.Type) {
		if err := checkPreAuth(req, t, orig); err != nil {
			return err
		}
		orig = nil // checked above
	}
	if orig != nil {
		switch {
		case orig.Type != TypeSale:
			return invalid("original_payment_id", "%s is a %s; only a sale can be reversed or refunded", orig.ID, orig.Type)
		case orig.Status != StatusCompleted:
			return invalid("original_payment_id", "%s is %s, not completed", orig.ID, orig.Status)
		case orig.Reversal != nil:
			return ErrAlreadyReversed
		case orig.TerminalID != req.TerminalID && req.Type == TypeReversal:
			return invalid("terminal_id", "a reversal runs on the terminal of the sale, %s", orig.TerminalID)
		case req.Type == TypeReversal && !reversible(orig):
			return invalid("original_payment_id", "%s has no receipt number to reverse", orig.ID)
		}
		if req.Type == TypeReversal {
			if req.Amount == 0 {
				req.Amount = orig.Amount
			}
			if req.Amount != orig.Amount {
				return invalid("amount", "a reversal voids the whole sale: %d", orig.Amount)
			}
		}
		if req.Type == TypeRefund && req.Amount > orig.Amount {
			return invalid("amount", "a refund cannot exceed the sale's %d", orig.Amount)
		}
	}
	if req.Currency != t.Currency {
		return invalid("currency", "terminal %s takes %s only", t.ID, t.Currency)
	}
	return nil
}

func isCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
