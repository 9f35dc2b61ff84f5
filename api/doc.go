// Package api is posgate's localhost HTTP API: routes (routes.go), one
// file per resource, authentication with API keys and request signatures,
// idempotent creating POSTs, and the JSON error envelope of DESIGN §3.
//
// It decodes, validates the shape of input, calls the owning package
// (apikey, outbox, webhook, payment, fiscal) and maps its errors to
// statuses in one place (errors.go). It owns no table and no business rule.
package api
