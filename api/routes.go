package api

import (
	"net/http"

	"github.com/posgate/posgate/apikey"
	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/outbox"
	"github.com/posgate/posgate/payment"
)

// Routes is the API's one source: addRoutes registers these handlers,
// OpenAPI() describes them and docs/api.md is generated from them, so the
// router, the OpenAPI document and the docs cannot drift (openapi_test.go
// walks the live mux against this table). Adding a route is one entry.
//
// Role is who may call: RoleNone (no key), RoleAny (any key) or RoleAdmin.
// Idem is IdemRequired for a route wrapped in idempotent() (the header is
// required and a retry replays the first answer), IdemOwn for a route
// that keeps its own record (webhook create). Req and Resp are zero values
// of the body types (nil: none); List says Resp is one item of a page.
// Errors are the route's own codes; the ones every keyed, bodied or
// idempotent route shares are added by the document generator.
var Routes = []Route{
	{Pattern: "GET /healthz", Role: RoleNone, Handler: handleHealth, Tag: "health", Summary: "Liveness and component states", Resp: healthDoc{}, Status: 200, Errors: errs(CodeUnavailable)},
	{Pattern: "GET /metrics", Role: RoleNone, Handler: metricsRoute, Tag: "health", Summary: "Prometheus metrics (text exposition format)", RespType: "text/plain", Status: 200},
	{Pattern: "GET /ui/", Role: RoleNone, Handler: handleUI, Tag: "health", Summary: "The status page (static files; it asks for a key and calls the API with it)", RespType: "text/html", Status: 200},
	{Pattern: "GET /v1/openapi.json", Role: RoleNone, Handler: handleOpenAPI, Tag: "health", Summary: "This API's OpenAPI 3.1 document", RespType: "application/json", Status: 200},

	{Pattern: "POST /v1/api-keys", Role: RoleAdmin, Idem: IdemRequired, Handler: handleAPIKeyCreate, Tag: "api-keys", Summary: "Create an API key; the secret is shown once", Req: apiKeyCreateDoc{}, Resp: apikey.Created{}, Status: 201, Errors: []ErrorDoc{{CodeValidation, 422}}},
	{Pattern: "GET /v1/api-keys", Role: RoleAdmin, Handler: handleAPIKeyList, Tag: "api-keys", Summary: "List API keys (never their secrets)", Resp: apikey.Key{}, List: true, Status: 200},
	{Pattern: "DELETE /v1/api-keys/{id}", Role: RoleAdmin, Handler: handleAPIKeyRevoke, Tag: "api-keys", Summary: "Revoke an API key", Resp: apikey.Key{}, Status: 200, Errors: errs(CodeNotFound, CodeConflict)},

	{Pattern: "POST /v1/certificates", Role: RoleAdmin, Idem: IdemRequired, Handler: handleCertificateImport, Tag: "certificates", Summary: "Import a fiscal signing certificate (PKCS#12 or PEM pair)", Req: certificateImportDoc{}, Resp: fiscal.Certificate{}, Status: 201, Errors: errs(CodeCertificateInvalid, CodeCertificatePassword, CodeCertificateExpired, CodeCertificateExists, CodeUnavailable)},
	{Pattern: "GET /v1/certificates", Role: RoleAdmin, Handler: handleCertificateList, Tag: "certificates", Summary: "List certificates", Resp: fiscal.Certificate{}, List: true, Status: 200, Errors: errs(CodeUnavailable)},
	{Pattern: "GET /v1/certificates/{id}", Role: RoleAdmin, Handler: handleCertificateGet, Tag: "certificates", Summary: "Get a certificate", Resp: fiscal.Certificate{}, Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "DELETE /v1/certificates/{id}", Role: RoleAdmin, Handler: handleCertificateDeactivate, Tag: "certificates", Summary: "Deactivate a certificate", Resp: fiscal.Certificate{}, Status: 200, Errors: errs(CodeNotFound, CodeCertificateInactive, CodeUnavailable)},

	{Pattern: "POST /v1/invoices", Role: RoleAny, Idem: IdemRequired, Handler: handleInvoiceCreate, Tag: "invoices", Summary: "Issue and sign a fiscal invoice", Req: fiscal.NewInvoice{}, Resp: fiscal.Invoice{}, Status: 201, Errors: errs(CodeCertificateNotBound, CodeNoCertificate, CodeTINMismatch, CodeInvoiceReversed, CodeCertificateExpired, CodeCertificateInactive, CodeUnavailable)},
	{Pattern: "GET /v1/invoices", Role: RoleAny, Handler: handleInvoiceList, Tag: "invoices", Summary: "List invoices, newest first", Query: listQuery, Resp: fiscal.Invoice{}, List: true, Status: 200, Errors: errs(CodeUnavailable)},
	{Pattern: "GET /v1/invoices/{id}", Role: RoleAny, Handler: handleInvoiceGet, Tag: "invoices", Summary: "Get an invoice", Resp: fiscal.Invoice{}, Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "GET /v1/invoices/{id}/qr.png", Role: RoleAny, Handler: handleInvoiceQR, Tag: "invoices", Summary: "The invoice's verification QR code as PNG", RespType: "image/png", Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},

	{Pattern: "POST /v1/invoices/{id}/fiscalization/retry", Role: RoleAdmin, Handler: handleFiscalizationRetry, Tag: "invoices", Summary: "Retry a dead or refused registration with the tax service (a pending one is a 409)", Resp: fiscalizationRetryResponse{}, Status: 200, Errors: errs(CodeNotFound, CodeNotRetryable, CodeUnavailable)},
	{Pattern: "POST /v1/invoices/{id}/reprint", Role: RoleAny, Idem: IdemRequired, Handler: handleInvoiceReprint, Tag: "invoices", Summary: "Print a COPY / DUPLIKAT copy of the invoice's printed receipt (receipt printers; one per Idempotency-Key)", Resp: fiscal.Copy{}, Status: 200, Errors: errs(CodeNotFound, CodeConflict, CodeDeviceUnavailable, CodePrinterRejected, CodeUnavailable)},
	{Pattern: "POST /v1/print-jobs/{id}/requeue", Role: RoleAdmin, Handler: handlePrintJobRequeue, Tag: "invoices", Summary: "Requeue a dead print job (a pending one answers as it is; a printed one is a 409)", Resp: printJobRequeueResponse{}, Status: 200, Errors: errs(CodeNotFound, CodeConflict, CodeUnavailable)},
	{Pattern: "POST /v1/fiscal/tcr", Role: RoleAdmin, Idem: IdemRequired, Handler: handleTCRRegister, Tag: "fiscal", Summary: "Register this device (TCR) with the tax service; worked like an invoice registration", Req: fiscal.TCRRegistration{}, Resp: registrationResponse{}, Status: 202, Errors: errs(CodeNoCertificate, CodeCertificateNotBound, CodeUnavailable)},
	{Pattern: "POST /v1/fiscal/cash-deposits", Role: RoleAny, Idem: IdemRequired, Handler: handleCashDeposit, Tag: "fiscal", Summary: "Register the day's initial cash deposit (INITIAL) or a withdrawal (WITHDRAW) with the tax service", Req: cashDepositRequest{}, Resp: registrationResponse{}, Status: 202, Errors: errs(CodeNoCertificate, CodeCertificateNotBound, CodeUnavailable)},
	{Pattern: "GET /v1/fiscal/registrations/{id}", Role: RoleAny, Handler: handleRegistrationGet, Tag: "fiscal", Summary: "A TCR or cash-deposit registration's state", Resp: registrationResponse{}, Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},

	{Pattern: "POST /v1/printers/{id}/reports/{kind}", Role: RoleAny, Idem: IdemRequired, Handler: handlePrinterReport, Tag: "printers", Summary: "Print an X (kind=x) or Z (kind=z, closes the day) report", Resp: reportBody{}, Status: 201, Errors: errs(CodeValidation, CodeNotFound, CodePrinterRejected, CodeDeviceUnavailable)},
	{Pattern: "POST /v1/printers/{id}/cash", Role: RoleAny, Idem: IdemRequired, Handler: handlePrinterCash, Tag: "printers", Summary: "Record cash put into (in) or taken out of (out) the drawer", Req: cashDoc{}, Resp: cashResultDoc{}, Status: 201, Errors: errs(CodeNotFound, CodePrinterRejected, CodeDeviceUnavailable)},

	{Pattern: "POST /v1/printers/{id}/duplicate", Role: RoleAny, Idem: IdemRequired, Handler: handlePrinterDuplicate, Tag: "printers", Summary: "Print the fiscal printer's duplicate of its last receipt (one per receipt; receipt.duplicated)", Resp: duplicateResult{}, Status: 201, Errors: errs(CodeNotFound, CodeNotFiscalPrinter, CodePrinterRejected, CodeDeviceUnavailable, CodeUnavailable)},

	{Pattern: "POST /v1/payments", Role: RoleAny, Idem: IdemRequired, Handler: handlePaymentCreate, Tag: "payments", Summary: "Start a card payment (or refund/reversal) on a terminal; answers at once", Req: payment.NewPayment{}, Resp: payment.Payment{}, Status: 201, Errors: errs(CodeTerminalBusy, CodeTerminalOffline, CodePaymentReversed, CodeUnavailable)},
	{Pattern: "GET /v1/payments", Role: RoleAny, Handler: handlePaymentList, Tag: "payments", Summary: "List payments, newest first", Query: listQuery, Resp: payment.Payment{}, List: true, Status: 200, Errors: errs(CodeUnavailable)},
	{Pattern: "GET /v1/payments/{id}", Role: RoleAny, Handler: handlePaymentGet, Tag: "payments", Summary: "Get a payment; ?wait= long-polls until it is final", Query: []Param{{"wait", "up to 60s (30s, or whole seconds): answer when the payment is final or the wait ends"}}, Resp: payment.Payment{}, Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "POST /v1/payments/{id}/cancel", Role: RoleAny, Handler: handlePaymentCancel, Tag: "payments", Summary: "Abort a payment in progress (202 until the terminal ends it)", Resp: payment.Payment{}, Status: 200, Errors: errs(CodeNotFound, CodePaymentNotCancellable, CodeUnavailable)},
	{Pattern: "POST /v1/terminals/{id}/end-of-day", Role: RoleAny, Idem: IdemRequired, Handler: handleEndOfDay, Tag: "payments", Summary: "Close the terminal's day (ZVT end of day); a retry gets the first totals", Resp: payment.EndOfDayResult{}, Status: 200, Errors: errs(CodeNotFound, CodeTerminalBusy, CodeTerminalOffline, CodeDeviceUnavailable, CodeUnavailable)},
	{Pattern: "GET /v1/terminals/{id}/end-of-day", Role: RoleAny, Handler: handleEndOfDayList, Tag: "payments", Summary: "The terminal's last end-of-days, newest first, each with its state (an interrupted one shows how it was reconciled)", Resp: payment.EndOfDayResult{}, List: true, Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "POST /v1/terminals/{id}/read-card", Role: RoleAny, Handler: handleReadCard, Tag: "payments", Summary: "Read a card for a loyalty lookup: its type and masked number, never the full number; nothing is stored", Resp: payment.CardRead{}, Status: 200, Errors: errs(CodeNotFound, CodeTerminalBusy, CodeTerminalOffline, CodeDeviceUnavailable)},
	{Pattern: "GET /v1/devices", Role: RoleAny, Handler: handleDeviceList, Tag: "devices", Summary: "List terminals and printers with their state", Resp: deviceView{}, List: true, Status: 200},
	{Pattern: "GET /v1/devices/{id}", Role: RoleAny, Handler: handleDeviceGet, Tag: "devices", Summary: "Get one device's state", Resp: deviceView{}, Status: 200, Errors: errs(CodeNotFound)},
	{Pattern: "GET /v1/devices/{id}/frames", Role: RoleAdmin, Handler: handleDeviceFrames, Tag: "devices", Summary: "A terminal's last frames, decoded (card data masked)", Resp: device.Frame{}, List: true, Status: 200, Errors: errs(CodeNotFound)},

	{Pattern: "POST /v1/webhooks", Role: RoleAdmin, Idem: IdemOwn, Handler: handleWebhookCreate, Tag: "webhooks", Summary: "Create a webhook endpoint (pinged first); the secret is shown once", Req: endpointRequest{}, Resp: createdView{}, Status: 201, Errors: errs(CodeEndpointLimit, CodeEndpointValidation, CodeUnavailable)},
	{Pattern: "GET /v1/webhooks", Role: RoleAdmin, Handler: handleWebhookList, Tag: "webhooks", Summary: "List webhook endpoints with pending and dead counts", Resp: endpointView{}, List: true, Status: 200, Errors: errs(CodeUnavailable)},
	{Pattern: "GET /v1/webhooks/{id}", Role: RoleAdmin, Handler: handleWebhookGet, Tag: "webhooks", Summary: "Get a webhook endpoint", Resp: endpointView{}, Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "PATCH /v1/webhooks/{id}", Role: RoleAdmin, Handler: handleWebhookUpdate, Tag: "webhooks", Summary: "Change fields of an endpoint (absent fields stay); status enabled/disabled", Req: endpointRequest{}, Resp: endpointView{}, Status: 200, Errors: errs(CodeNotFound, CodeEndpointValidation, CodeUnavailable)},
	{Pattern: "DELETE /v1/webhooks/{id}", Role: RoleAdmin, Handler: handleWebhookDelete, Tag: "webhooks", Summary: "Delete an endpoint and its pending deliveries", Status: 204, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "POST /v1/webhooks/{id}/rotate-secret", Role: RoleAdmin, Idem: IdemRequired, Handler: handleWebhookRotate, Tag: "webhooks", Summary: "Make a new signing secret; the old one keeps signing during the overlap", Resp: createdView{}, Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "POST /v1/webhooks/{id}/test", Role: RoleAdmin, Idem: IdemRequired, Handler: handleWebhookTest, Tag: "webhooks", Summary: "Queue a webhook.test event to this endpoint only", Resp: outbox.EventRecord{}, Status: 202, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "GET /v1/webhooks/{id}/deliveries", Role: RoleAdmin, Handler: handleDeliveryList, Tag: "webhooks", Summary: "An endpoint's deliveries with their last attempt", Query: []Param{{"state", "pending, delivered or dead"}, {"cursor", "next_cursor of the previous page"}, {"limit", "1 to 1000"}}, Resp: outbox.Delivery{}, List: true, Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "POST /v1/webhooks/{id}/recover", Role: RoleAdmin, Handler: handleWebhookRecover, Tag: "webhooks", Summary: "Requeue the endpoint's dead deliveries since a time", Req: recoverDoc{}, Resp: recoverResultDoc{}, Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "GET /v1/deliveries/{id}", Role: RoleAdmin, Handler: handleDeliveryGet, Tag: "webhooks", Summary: "Get a delivery", Resp: outbox.Delivery{}, Status: 200, Errors: errs(CodeNotFound, CodeUnavailable)},
	{Pattern: "POST /v1/deliveries/{id}/retry", Role: RoleAdmin, Handler: handleDeliveryRetry, Tag: "webhooks", Summary: "Send a dead (or pending) delivery again now", Resp: outbox.Delivery{}, Status: 200, Errors: errs(CodeNotFound, CodeConflict, CodeUnavailable)},
	{Pattern: "GET /v1/events", Role: RoleAdmin, Handler: handleEventList, Tag: "webhooks", Summary: "The event log, newest first", Query: []Param{{"type", "an event type, e.g. payment.succeeded"}, {"since", "RFC 3339 time"}, {"cursor", "next_cursor of the previous page"}, {"limit", "1 to 1000"}}, Resp: outbox.EventRecord{}, List: true, Status: 200, Errors: errs(CodeUnavailable)},
}

// routeMux is where addRoutes registers; tests record the patterns.
type routeMux interface {
	Handle(pattern string, h http.Handler)
}

// addRoutes registers every route of Routes, wrapped in its role's
// authentication and its idempotency, then the JSON catch-alls.
func addRoutes(mux *http.ServeMux, d Deps) { registerRoutes(mux, mux, d) }

func registerRoutes(reg routeMux, mux *http.ServeMux, d Deps) {
	admin := func(h http.Handler) http.Handler { return requireRole(d.Log, d.Keys, d.Limiter, apikey.RoleAdmin, h) }
	anyKey := func(h http.Handler) http.Handler { return requireRole(d.Log, d.Keys, d.Limiter, "", h) }
	create := func(h http.Handler) http.Handler { return idempotent(d.Log, d.Idem, h) }

	for _, rt := range Routes {
		h := rt.Handler(d)
		if rt.Idem == IdemRequired {
			h = create(h)
		}
		switch rt.Role {
		case RoleAdmin:
			h = admin(h)
		case RoleAny:
			h = anyKey(h)
		}
		reg.Handle(rt.Pattern, h)
	}

	// Profiling is off by default (config debug.pprof) and for admins only;
	// it is not part of the documented API.
	if d.Pprof {
		reg.Handle("/debug/pprof/", admin(handlePprof()))
	}

	// Anything else under /v1 is a JSON 404, not the mux's text page.
	// A known path with another method is a JSON 405 (noroute.go).
	reg.Handle("/v1/", anyKey(handleNoRoute(d, mux)))
	reg.Handle("/", handleNoRoute(d, mux))
}

func metricsRoute(d Deps) http.Handler { return handleMetrics(d.Metrics) }
