package nexo

// The message shapes posgate sends and reads, named as in the nexo
// Sale-to-POI specification and Adyen's OpenAPI (adyen-openapi
// yaml/TerminalAPI-v1.yaml). Only the fields posgate uses are declared;
// decoding ignores the rest. Fields real terminals send with another JSON
// type than the OpenAPI declares use Text, Int or Decimal.

// Message classes, categories and types of MessageHeader.
const (
	ClassService = "Service"
	ClassDevice  = "Device"
	ClassEvent   = "Event"

	CategoryPayment           = "Payment"
	CategoryReversal          = "Reversal"
	CategoryAbort             = "Abort"
	CategoryTransactionStatus = "TransactionStatus"
	CategoryDiagnosis         = "Diagnosis"
	CategoryEvent             = "Event"
	CategoryDisplay           = "Display"

	TypeRequest      = "Request"
	TypeResponse     = "Response"
	TypeNotification = "Notification"

	ProtocolVersion = "3.0"
)

// Results and the ErrorCondition values of Response.
const (
	ResultSuccess = "Success"
	ResultFailure = "Failure"
	ResultPartial = "Partial"
)

// Header is MessageHeader.
type Header struct {
	ProtocolVersion string `json:"ProtocolVersion,omitempty"`
	MessageClass    string `json:"MessageClass"`
	MessageCategory string `json:"MessageCategory"`
	MessageType     string `json:"MessageType"`
	ServiceID       string `json:"ServiceID,omitempty"`
	DeviceID        string `json:"DeviceID,omitempty"`
	SaleID          string `json:"SaleID"`
	POIID           string `json:"POIID"`
}

// Request is the body of SaleToPOIRequest: a header and one message.
type Request struct {
	MessageHeader            Header                    `json:"MessageHeader"`
	PaymentRequest           *PaymentRequest           `json:"PaymentRequest,omitempty"`
	ReversalRequest          *ReversalRequest          `json:"ReversalRequest,omitempty"`
	AbortRequest             *AbortRequest             `json:"AbortRequest,omitempty"`
	TransactionStatusRequest *TransactionStatusRequest `json:"TransactionStatusRequest,omitempty"`
	DiagnosisRequest         *DiagnosisRequest         `json:"DiagnosisRequest,omitempty"`
	EventNotification        *EventNotification        `json:"EventNotification,omitempty"`
	DisplayRequest           *DisplayRequest           `json:"DisplayRequest,omitempty"`
}

// Response is the body of SaleToPOIResponse.
type Response struct {
	MessageHeader             Header                     `json:"MessageHeader"`
	PaymentResponse           *PaymentResponse           `json:"PaymentResponse,omitempty"`
	ReversalResponse          *ReversalResponse          `json:"ReversalResponse,omitempty"`
	TransactionStatusResponse *TransactionStatusResponse `json:"TransactionStatusResponse,omitempty"`
	DiagnosisResponse         *DiagnosisResponse         `json:"DiagnosisResponse,omitempty"`
}

// RequestMessage is the whole plaintext of a request.
type RequestMessage struct {
	SaleToPOIRequest *Request `json:"SaleToPOIRequest"`
}

// ResponseMessage is the whole plaintext of a response.
type ResponseMessage struct {
	SaleToPOIResponse *Response `json:"SaleToPOIResponse"`
}

// TransactionID identifies a transaction on one side (TransactionIDType).
type TransactionID struct {
	TransactionID string `json:"TransactionID"`
	TimeStamp     string `json:"TimeStamp"`
}

// Result is the Response object every response carries.
type Result struct {
	Result             string `json:"Result"`
	ErrorCondition     string `json:"ErrorCondition,omitempty"`
	AdditionalResponse string `json:"AdditionalResponse,omitempty"`
}

// SaleData identifies the sale system's transaction.
type SaleData struct {
	SaleTransactionID TransactionID `json:"SaleTransactionID"`
	SaleReferenceID   string        `json:"SaleReferenceID,omitempty"`
}

// AmountsReq is what the sale system asks for.
type AmountsReq struct {
	Currency        string  `json:"Currency"`
	RequestedAmount Decimal `json:"RequestedAmount"`
}

// PaymentTransaction carries the amounts of a PaymentRequest.
type PaymentTransaction struct {
	AmountsReq AmountsReq `json:"AmountsReq"`
}

// PaymentData says what kind of payment it is.
type PaymentData struct {
	PaymentType string `json:"PaymentType,omitempty"` // Normal (default) or Refund
}

// PaymentRequest starts a payment (or an unreferenced refund).
type PaymentRequest struct {
	SaleData           SaleData           `json:"SaleData"`
	PaymentTransaction PaymentTransaction `json:"PaymentTransaction"`
	PaymentData        *PaymentData       `json:"PaymentData,omitempty"`
}

// POIData identifies the terminal's transaction.
type POIData struct {
	POITransactionID    TransactionID `json:"POITransactionID"`
	POIReconciliationID Text          `json:"POIReconciliationID,omitempty"`
}

// AmountsResp is what the terminal authorised.
type AmountsResp struct {
	Currency         string  `json:"Currency,omitempty"`
	AuthorizedAmount Decimal `json:"AuthorizedAmount"`
}

// CardData describes the card, masked.
type CardData struct {
	MaskedPan       string   `json:"MaskedPan,omitempty"`
	PaymentBrand    string   `json:"PaymentBrand,omitempty"`
	CardCountryCode Text     `json:"CardCountryCode,omitempty"`
	EntryMode       []string `json:"EntryMode,omitempty"`
}

// PaymentInstrumentData says how the customer paid.
type PaymentInstrumentData struct {
	PaymentInstrumentType string    `json:"PaymentInstrumentType,omitempty"`
	CardData              *CardData `json:"CardData,omitempty"`
}

// PaymentAcquirerData is the acquirer's view.
type PaymentAcquirerData struct {
	ApprovalCode          string         `json:"ApprovalCode,omitempty"`
	MerchantID            string         `json:"MerchantID,omitempty"`
	AcquirerPOIID         string         `json:"AcquirerPOIID,omitempty"`
	AcquirerTransactionID *TransactionID `json:"AcquirerTransactionID,omitempty"`
}

// PaymentResult is the result part of a PaymentResponse.
type PaymentResult struct {
	PaymentType           string                 `json:"PaymentType,omitempty"`
	AmountsResp           *AmountsResp           `json:"AmountsResp,omitempty"`
	PaymentInstrumentData *PaymentInstrumentData `json:"PaymentInstrumentData,omitempty"`
	PaymentAcquirerData   *PaymentAcquirerData   `json:"PaymentAcquirerData,omitempty"`
	OnlineFlag            bool                   `json:"OnlineFlag,omitempty"`
}

// OutputText is one line of a receipt.
type OutputText struct {
	Text          string `json:"Text"`
	EndOfLineFlag bool   `json:"EndOfLineFlag,omitempty"`
}

// OutputContent is a receipt's text.
type OutputContent struct {
	OutputFormat string       `json:"OutputFormat"`
	OutputText   []OutputText `json:"OutputText,omitempty"`
}

// PaymentReceipt is a receipt the terminal hands the sale system.
type PaymentReceipt struct {
	DocumentQualifier     string        `json:"DocumentQualifier"`
	RequiredSignatureFlag bool          `json:"RequiredSignatureFlag,omitempty"`
	OutputContent         OutputContent `json:"OutputContent"`
}

// PaymentResponse ends a payment.
type PaymentResponse struct {
	Response       Result           `json:"Response"`
	SaleData       SaleData         `json:"SaleData"`
	POIData        POIData          `json:"POIData"`
	PaymentResult  *PaymentResult   `json:"PaymentResult,omitempty"`
	PaymentReceipt []PaymentReceipt `json:"PaymentReceipt,omitempty"`
}

// OriginalPOITransaction names the transaction a reversal voids.
type OriginalPOITransaction struct {
	POITransactionID TransactionID `json:"POITransactionID"`
	SaleID           string        `json:"SaleID,omitempty"`
	POIID            string        `json:"POIID,omitempty"`
}

// ReversalRequest voids (or refunds, Adyen decides) an earlier payment.
// Without ReversedAmount the whole authorised amount is reversed.
type ReversalRequest struct {
	OriginalPOITransaction OriginalPOITransaction `json:"OriginalPOITransaction"`
	ReversalReason         string                 `json:"ReversalReason"`
	ReversedAmount         Decimal                `json:"ReversedAmount,omitempty"`
	SaleData               *SaleData              `json:"SaleData,omitempty"`
}

// ReversalResponse answers a ReversalRequest. Success means Adyen took
// the reversal; its final outcome reaches the merchant's back office.
type ReversalResponse struct {
	Response        Result   `json:"Response"`
	POIData         *POIData `json:"POIData,omitempty"`
	ReversedAmount  Decimal  `json:"ReversedAmount,omitempty"`
	CustomerOrderID string   `json:"CustomerOrderID,omitempty"`
}

// MessageReference points at an earlier message.
type MessageReference struct {
	MessageCategory string `json:"MessageCategory,omitempty"`
	ServiceID       string `json:"ServiceID,omitempty"`
	SaleID          string `json:"SaleID,omitempty"`
	POIID           string `json:"POIID,omitempty"`
}

// AbortRequest stops the transaction MessageReference names. A terminal
// answers it with HTTP 200 and no body.
type AbortRequest struct {
	AbortReason      string           `json:"AbortReason"`
	MessageReference MessageReference `json:"MessageReference"`
}

// TransactionStatusRequest asks for the outcome of the payment or
// reversal MessageReference names; without one, of the last.
type TransactionStatusRequest struct {
	MessageReference   *MessageReference `json:"MessageReference,omitempty"`
	ReceiptReprintFlag bool              `json:"ReceiptReprintFlag,omitempty"`
	DocumentQualifier  []string          `json:"DocumentQualifier,omitempty"`
}

// RepeatedMessageResponse is the original response TransactionStatus
// returns once the transaction is done.
type RepeatedMessageResponse struct {
	MessageHeader               Header              `json:"MessageHeader"`
	RepeatedResponseMessageBody RepeatedMessageBody `json:"RepeatedResponseMessageBody"`
}

// RepeatedMessageBody holds one of the repeated responses.
type RepeatedMessageBody struct {
	PaymentResponse  *PaymentResponse  `json:"PaymentResponse,omitempty"`
	ReversalResponse *ReversalResponse `json:"ReversalResponse,omitempty"`
}

// TransactionStatusResponse: Response.Result Success means the lookup
// worked and RepeatedMessageResponse holds the transaction's own result;
// Failure with InProgress means it is still running, NotFound that the
// terminal does not know it.
type TransactionStatusResponse struct {
	Response                Result                   `json:"Response"`
	MessageReference        *MessageReference        `json:"MessageReference,omitempty"`
	RepeatedMessageResponse *RepeatedMessageResponse `json:"RepeatedMessageResponse,omitempty"`
}

// DiagnosisRequest asks for the terminal's health.
type DiagnosisRequest struct {
	HostDiagnosisFlag bool `json:"HostDiagnosisFlag,omitempty"`
}

// POIStatus is the terminal's state in a DiagnosisResponse.
type POIStatus struct {
	GlobalStatus         string `json:"GlobalStatus"` // OK, Busy, Maintenance, Unreachable
	CommunicationOKFlag  bool   `json:"CommunicationOKFlag,omitempty"`
	PrinterStatus        string `json:"PrinterStatus,omitempty"`
	SecurityOKFlag       bool   `json:"SecurityOKFlag,omitempty"`
	PEDOKFlag            bool   `json:"PEDOKFlag,omitempty"`
	CardReaderOKFlag     bool   `json:"CardReaderOKFlag,omitempty"`
	FraudPreventionFlag  bool   `json:"FraudPreventionFlag,omitempty"`
	CashHandlingDevice   any    `json:"CashHandlingDevice,omitempty"`
	POIStatusDescription string `json:"POIStatusDescription,omitempty"`
}

// DiagnosisResponse answers a DiagnosisRequest.
type DiagnosisResponse struct {
	Response     Result     `json:"Response"`
	POIStatus    *POIStatus `json:"POIStatus,omitempty"`
	LoggedSaleID []string   `json:"LoggedSaleID,omitempty"`
}

// EventNotification is what the terminal posts to an event URL.
type EventNotification struct {
	TimeStamp               string `json:"TimeStamp,omitempty"`
	EventToNotify           string `json:"EventToNotify"`
	EventDetails            string `json:"EventDetails,omitempty"`
	RejectedMessage         string `json:"RejectedMessage,omitempty"`
	MaintenanceRequiredFlag bool   `json:"MaintenanceRequiredFlag,omitempty"`
}

// PredefinedContent names a display message.
type PredefinedContent struct {
	ReferenceID string `json:"ReferenceID"`
}

// DisplayContent is the content of one display output.
type DisplayContent struct {
	OutputFormat      string             `json:"OutputFormat,omitempty"`
	PredefinedContent *PredefinedContent `json:"PredefinedContent,omitempty"`
	OutputText        []OutputText       `json:"OutputText,omitempty"`
}

// DisplayOutput is one thing to show.
type DisplayOutput struct {
	Device        string         `json:"Device,omitempty"`
	InfoQualify   string         `json:"InfoQualify,omitempty"`
	OutputContent DisplayContent `json:"OutputContent"`
}

// DisplayRequest is a progress message a terminal posts to a display URL.
type DisplayRequest struct {
	DisplayOutput []DisplayOutput `json:"DisplayOutput"`
}
