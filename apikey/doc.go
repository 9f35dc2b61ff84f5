// Package apikey owns API keys: creating them (the client secret is shown
// once and never stored in plaintext), listing, revoking, binding a
// certificate, and authenticating a request in either mode of DESIGN §3:
// "X-Api-Key: client_id:secret", or a signed request (X-Timestamp and an
// HMAC-SHA256 X-Signature) with replay and clock-window checks.
//
// It owns the api_keys and request_signatures tables. It does not know
// HTTP routing or roles' meaning beyond admin and pos; the api package
// decides which route needs which role.
package apikey
