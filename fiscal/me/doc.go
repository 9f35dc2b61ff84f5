// Package me is the client of Montenegro's fiscal service (the "CIS"),
// as its technical specification v5 describes it
// (shared/research/me-cis/): the RegisterInvoice, RegisterTCR and
// RegisterCashDeposit requests built from posgate's invoices, each in a
// SOAP 1.1 envelope and signed with an enveloped XML signature (exclusive
// C14N, RSA-SHA256, SHA-256 digest, the certificate in KeyInfo, reference
// "#Request"); the answers and SOAP faults read by namespace; the HTTPS
// transport; and the error code table of chapter 3.8.2 with its split
// into temporary failures, rejections and blocking errors (ch. 3.4).
//
// It implements fiscal.Registrar, so it is the registration half of the
// "me" country profile (Albania's service takes the same shape under
// another namespace: see docs/fiscal.md). It does not sign the IIC
// (fiscal/iic), keep registration jobs or retry (fiscal.Registrations),
// or read configuration (cmd/posgate).
//
// Country is the whole "me"/"al" fiscal.Profile: IIC, numbering, the
// receipt with IIC, FIC, verification URL and QR, and no
// fiscalization.completed on print (the service's FIC completes it).
package me
