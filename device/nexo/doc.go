// Package nexo drives a payment terminal that speaks nexo Sale-to-POI in
// Adyen's local "Terminal API" form: JSON over HTTPS on the shop LAN
// (POST https://<terminal>:8443/nexo/), every message encrypted with a key
// derived from a passphrase (AdyenCryptoVersion 1). It implements
// device.Terminal: Payment for a sale or an unreferenced refund, Reversal
// for a referenced refund or a void, Abort, TransactionStatus for a result
// that never arrived, and Diagnosis as the health check. It also offers a
// listener for the event and display notifications a terminal posts.
//
// It owns the crypto (crypto.go), the message shapes with their lenient
// parsing (messages.go, amount.go), the TLS trust rule (trust.go) and the
// client; it does not know payments, the store or the API. The
// parameters and their sources are in research/nexo.md.
package nexo
