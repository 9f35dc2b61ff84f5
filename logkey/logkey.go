// Package logkey names the structured log fields every component shares,
// so one grep finds a device, an endpoint or a request across the daemon.
package logkey

// Field keys. Values are never secrets: no client secret, webhook secret,
// private key or unmasked card number is ever logged under any key.
const (
	Component  = "component"
	DeviceID   = "device_id"
	Port       = "port"
	EndpointID = "endpoint_id"
	MsgID      = "msg_id"
	Attempt    = "attempt"
	ReceiptNo  = "receipt_no"
	KeyID      = "key_id"
	PaymentID  = "payment_id"
	InvoiceID  = "invoice_id"
	DeliveryID = "delivery_id"
	Method     = "method"
	Route      = "route"
	Status     = "status"
	Duration   = "duration"
	RequestID  = "request_id"
)
