package api

import (
	"net/http"

	"github.com/posgate/posgate/apikey"
)

// addRoutes registers every route. Read it as the API's table of contents:
// each line says who may call a route and whether it is idempotent.
func addRoutes(mux *http.ServeMux, d Deps) {
	admin := func(h http.Handler) http.Handler { return requireRole(d.Log, d.Keys, d.Limiter, apikey.RoleAdmin, h) }
	anyKey := func(h http.Handler) http.Handler { return requireRole(d.Log, d.Keys, d.Limiter, "", h) }
	create := func(h http.Handler) http.Handler { return idempotent(d.Log, d.Idem, h) }

	mux.Handle("GET /healthz", handleHealth(d))
	mux.Handle("GET /metrics", handleMetrics(d.Metrics))

	mux.Handle("POST /v1/api-keys", admin(create(handleAPIKeyCreate(d))))
	mux.Handle("GET /v1/api-keys", admin(handleAPIKeyList(d)))
	mux.Handle("DELETE /v1/api-keys/{id}", admin(handleAPIKeyRevoke(d)))

	mux.Handle("POST /v1/certificates", admin(create(handleCertificateImport(d))))
	mux.Handle("GET /v1/certificates", admin(handleCertificateList(d)))
	mux.Handle("GET /v1/certificates/{id}", admin(handleCertificateGet(d)))
	mux.Handle("DELETE /v1/certificates/{id}", admin(handleCertificateDeactivate(d)))

	mux.Handle("POST /v1/invoices", anyKey(create(handleInvoiceCreate(d))))
	mux.Handle("GET /v1/invoices", anyKey(handleInvoiceList(d)))
	mux.Handle("GET /v1/invoices/{id}", anyKey(handleInvoiceGet(d)))
	mux.Handle("GET /v1/invoices/{id}/qr.png", anyKey(handleInvoiceQR(d)))
	mux.Handle("POST /v1/invoices/{id}/fiscalization/retry", admin(handleFiscalizationRetry(d))) // a second retry of a pending one is a 409
	mux.Handle("POST /v1/fiscal/tcr", admin(create(handleTCRRegister(d))))
	mux.Handle("POST /v1/fiscal/cash-deposits", anyKey(create(handleCashDeposit(d))))
	mux.Handle("GET /v1/fiscal/registrations/{id}", anyKey(handleRegistrationGet(d)))

	mux.Handle("POST /v1/printers/{id}/reports/{kind}", anyKey(create(handlePrinterReport(d))))
	mux.Handle("POST /v1/printers/{id}/cash", anyKey(create(handlePrinterCash(d))))

	mux.Handle("POST /v1/payments", anyKey(create(handlePaymentCreate(d))))
	mux.Handle("GET /v1/payments", anyKey(handlePaymentList(d)))
	mux.Handle("GET /v1/payments/{id}", anyKey(handlePaymentGet(d)))
	mux.Handle("POST /v1/payments/{id}/cancel", anyKey(handlePaymentCancel(d)))
	mux.Handle("POST /v1/terminals/{id}/end-of-day", anyKey(create(handleEndOfDay(d)))) // a retry gets the first totals
	mux.Handle("GET /v1/terminals/{id}/end-of-day", anyKey(handleEndOfDayList(d)))
	mux.Handle("POST /v1/terminals/{id}/read-card", anyKey(handleReadCard(d)))
	mux.Handle("GET /v1/devices", anyKey(handleDeviceList(d)))
	mux.Handle("GET /v1/devices/{id}", anyKey(handleDeviceGet(d)))
	mux.Handle("GET /v1/devices/{id}/frames", admin(handleDeviceFrames(d)))

	mux.Handle("POST /v1/webhooks", admin(handleWebhookCreate(d))) // idempotent on its own row: see webhooks.go
	mux.Handle("GET /v1/webhooks", admin(handleWebhookList(d)))
	mux.Handle("GET /v1/webhooks/{id}", admin(handleWebhookGet(d)))
	mux.Handle("PATCH /v1/webhooks/{id}", admin(handleWebhookUpdate(d)))
	mux.Handle("DELETE /v1/webhooks/{id}", admin(handleWebhookDelete(d)))
	// A retried rotation must not rotate twice: that would drop the secret
	// receivers still use. Kept answers are sealed, so the new secret is
	// safe in the idempotency record.
	mux.Handle("POST /v1/webhooks/{id}/rotate-secret", admin(create(handleWebhookRotate(d))))
	mux.Handle("POST /v1/webhooks/{id}/test", admin(create(handleWebhookTest(d))))
	mux.Handle("GET /v1/webhooks/{id}/deliveries", admin(handleDeliveryList(d)))
	mux.Handle("POST /v1/webhooks/{id}/recover", admin(handleWebhookRecover(d)))
	mux.Handle("GET /v1/deliveries/{id}", admin(handleDeliveryGet(d)))
	mux.Handle("POST /v1/deliveries/{id}/retry", admin(handleDeliveryRetry(d)))
	mux.Handle("GET /v1/events", admin(handleEventList(d)))
	if d.Pprof {
		mux.Handle("/debug/pprof/", admin(handlePprof())) // off by default: config debug.pprof
	}

	// Anything else under /v1 is a JSON 404, not the mux's text page.
	// A known path with another method is a JSON 405 (noroute.go).
	mux.Handle("/v1/", anyKey(handleNoRoute(d, mux)))
	mux.Handle("/", handleNoRoute(d, mux))
}
