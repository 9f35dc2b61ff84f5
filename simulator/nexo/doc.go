// Package nexo simulates a payment terminal that speaks Adyen's local
// Terminal API (nexo Sale-to-POI as encrypted JSON over HTTPS), for the
// test suite, for Adyen's own client libraries, and for technicians
// (posgate sim terminal --protocol nexo). It generates its own test
// certificate chain (root → intermediate → leaf named like a terminal's),
// and picks the outcome of a payment from the last two digits of its
// amount in minor units, as the ZVT simulator does (DESIGN §7).
//
// It owns the terminal's side only: serving, the scenarios and the
// journal. The crypto and message shapes are device/nexo's.
package nexo
