package me

import "strconv"

// Codes is the error code table of spec ch. 3.8.2 ("Kodovi greške"),
// in English, for logs, events and docs/fiscal.md. "9xx" are the
// service's internal errors.
var Codes = map[string]string{
	"0":  "exception while reading the XML message during the size check",
	"1":  "the XML message exceeds the allowed size (150 kB)",
	"2":  "the client's clock differs from the server's by more than 6 hours, or is in the future",
	"10": "exception while reading the XML message during XSD validation",
	"11": "the XML message failed XSD validation",
	"20": "exception while reading the XML message during the signature check",
	"21": "the Signature element is missing",
	"22": "the request element is missing",
	"23": "exception while reading the Signature element",
	"24": "more than one Signature element",
	"25": "the wrong XML element is signed",
	"26": "wrong signature method",
	"27": "wrong canonicalisation method",
	"28": "wrong digest method",
	"29": "the cryptographic signature is wrong",
	"30": "the digest is wrong",
	"31": "the signature as a whole is wrong",
	"32": "more key information than needed",
	"33": "the attached certificate is not X.509",
	"34": "the certificate is not valid",
	"35": "the certificate was not issued by a registered CA",
	"36": "the certificate has expired",
	"37": "the TIN in the XML differs from the certificate's",
	"38": "the certificate is revoked",
	"39": "the certificate's status is unknown",
	"41": "the business unit code is not an active business unit (premises) of the taxpayer",
	"42": "the software code is not active software",
	"43": "the maintainer code is not an active maintainer",
	"44": "the issuer's VAT status does not match IsIssuerInVAT",
	"45": "ValidFrom cannot be in the past",
	"46": "ValidTo cannot be in the past",
	"47": "ValidTo cannot be before ValidFrom",
	"48": "an active TCR cannot be updated",
	"50": "the cash amount of an INITIAL deposit cannot be negative",
	"51": "the cash amount of a WITHDRAW cannot be zero",
	"52": "the taxpayer is not in the register of taxpayers",
	"53": "the TCR code is not a registered or active TCR, or not the issuer's",
	"54": "the identification type must be TIN",
	"55": "the taxpayer is not active in the register of taxpayers",
	"56": "an INITIAL cash deposit is already registered for today",
	"57": "a deactivated TCR cannot be changed",
	"58": "no INITIAL cash deposit is registered for today",
}

// Describe returns the table's text for code, the 9xx class for an
// internal error, or "".
func Describe(code string) string {
	if d, ok := Codes[code]; ok {
		return d
	}
	if ServerCode(code) {
		return "internal error of the fiscal service"
	}
	return ""
}

// ServerCode reports whether code is one of the service's internal
// errors (9xx): temporary, the same request may succeed later.
func ServerCode(code string) bool {
	n, err := strconv.Atoi(code)
	return err == nil && n >= 900 && n <= 999
}

// Blocking reports whether code is a blocking error (functional spec
// 3.4, "Blokirajuće greške"): a message too large, failing the schema,
// a wrong IsIssuerInVAT or a wrong signature. The invoice may not be
// handed to the customer until the error is fixed and the invoice
// registered; every other rejection still lets the shop hand over the
// invoice with its IIC and fix the error within 48 hours.
func Blocking(code string) bool {
	n, err := strconv.Atoi(code)
	if err != nil {
		return false
	}
	switch {
	case n == 1, n == 10, n == 11, n == 44:
		return true
	case n >= 20 && n <= 33: // the signature and its parts
		return true
	}
	return false
}
