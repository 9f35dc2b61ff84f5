// Package taxservice simulates Montenegro's fiscal service (the CIS) for
// tests and technicians: HTTPS on loopback with its own certificate, the
// RegisterInvoice, RegisterTCR and RegisterCashDeposit requests of the
// technical specification v5, answers signed as the service signs them,
// the checks that matter to a client (the request's XML signature, the
// IIC against IICSignature and the certificate, SubseqDelivType on late
// requests, the day's initial cash deposit), and fault switches.
//
// It reads requests with its own code, by namespace, and shares nothing
// with posgate's client (fiscal/me) but the XML-DSig library. It does
// not validate against the XSD (tests do that with xmllint).
package taxservice
