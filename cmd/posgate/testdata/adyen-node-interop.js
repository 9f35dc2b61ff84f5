// Drives posgate's nexo simulator with Adyen's official Node library
// (@adyen/api-library, TerminalLocalAPI): a sale, a status request, an
// abort and a wrong-key error. Run by sim_nexo_interop_test.go.
// Prints one JSON line per step.
"use strict";
const net = require("net");
const dns = require("dns");

// Loopback only: refuse any other connection or name lookup, so the
// library's defaults can never reach Adyen's hosts from a test.
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const o = args[0];
  if (o && typeof o === "object" && o.path) return connect.apply(this, args);
  const host = o && typeof o === "object" ? o.host : args[1];
  if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(String(host))) {
    throw new Error("interop test refused a connection to " + host);
  }
  return connect.apply(this, args);
};
const lookup = dns.lookup;
dns.lookup = function (host, ...rest) {
  if (host !== "localhost") throw new Error("interop test refused to resolve " + host);
  return lookup.call(dns, host, ...rest);
};

const { Client, Config, TerminalLocalAPI } = require("@adyen/api-library");
const NexoCrypto = require("@adyen/api-library/lib/src/security/nexoCrypto").default;
const getJsonResponse = require("@adyen/api-library/lib/src/helpers/getJsonResponse").default;

const env = process.env;
// The library appends ":8443/nexo/" to the endpoint; a trailing "?"
// turns that into a query it drops, so the simulator can use any port.
const endpoint = "https://" + env.SIM_ADDR + "/nexo/?";

function api(passphrase) {
  const config = new Config({ environment: "TEST", apiKey: "unused-locally", terminalApiLocalEndpoint: endpoint,
    certificatePath: env.SIM_ROOT, connectionTimeoutMillis: 20000 });
  const client = new Client(config);
  return { local: new TerminalLocalAPI(client), key: { AdyenCryptoVersion: 1, KeyIdentifier: env.KEY_ID, KeyVersion: 1, Passphrase: passphrase } };
}

let sid = 0;
function header(category) {
  sid++;
  return { ProtocolVersion: "3.0", MessageClass: "Service", MessageCategory: category, MessageType: "Request",
    ServiceID: "N" + Date.now().toString(36).slice(-6) + sid, SaleID: "NodeInterop", POIID: env.POI_ID };
}

function sale(amount, hdr) {
  return { SaleToPOIRequest: { MessageHeader: hdr, PaymentRequest: {
    SaleData: { SaleTransactionID: { TransactionID: "node-" + hdr.ServiceID, TimeStamp: new Date().toISOString() } },
    PaymentTransaction: { AmountsReq: { Currency: "EUR", RequestedAmount: amount } } } } };
}

const out = (step, v) => console.log(JSON.stringify(Object.assign({ step }, v)));

(async () => {
  const { local, key } = api(env.PASSPHRASE);

  // 1. A sale of 10.99.
  const saleHdr = header("Payment");
  const r1 = await local.request(sale(10.99, saleHdr), key);
  const p = r1.SaleToPOIResponse.PaymentResponse;
  out("sale", { result: p.Response.Result, poiTx: p.POIData.POITransactionID.TransactionID,
    authorized: p.PaymentResult.AmountsResp.AuthorizedAmount, serviceID: r1.SaleToPOIResponse.MessageHeader.ServiceID });

  // 2. Its status.
  const r2 = await local.request({ SaleToPOIRequest: { MessageHeader: header("TransactionStatus"), TransactionStatusRequest: {
    ReceiptReprintFlag: true, DocumentQualifier: ["CashierReceipt", "CustomerReceipt"],
    MessageReference: { MessageCategory: "Payment", SaleID: "NodeInterop", ServiceID: saleHdr.ServiceID } } } }, key);
  const ts = r2.SaleToPOIResponse.TransactionStatusResponse;
  const rp = ts.RepeatedMessageResponse.RepeatedResponseMessageBody.PaymentResponse;
  out("status", { result: ts.Response.Result, inner: rp.Response.Result, poiTx: rp.POIData.POITransactionID.TransactionID });

  // 3. A sale that waits for the card (amount ending in 52), aborted.
  const abortHdr = header("Payment");
  const pending = local.request(sale(10.52, abortHdr), key);
  await new Promise((r) => setTimeout(r, 500));
  const r3 = await local.request({ SaleToPOIRequest: { MessageHeader: header("Abort"), AbortRequest: {
    AbortReason: "MerchantAbort", MessageReference: { MessageCategory: "Payment", SaleID: "NodeInterop",
      ServiceID: abortHdr.ServiceID, POIID: env.POI_ID } } } }, key);
  const aborted = (await pending).SaleToPOIResponse.PaymentResponse.Response;
  out("abort", { abortAnswer: JSON.stringify(r3), result: aborted.Result, condition: aborted.ErrorCondition });

  // 4. The wrong passphrase: request() cannot read the terminal's
  // refusal, so the same sealed request also goes through the library's
  // own transport to read the answer as sent.
  const wrong = api(env.PASSPHRASE + "-wrong");
  let error = "";
  try {
    await wrong.local.request(sale(1.00, header("Payment")), wrong.key);
  } catch (e) {
    error = String(e && (e.message || e));
  }
  const wrongSale = sale(1.00, header("Payment"));
  const sealed = NexoCrypto.encrypt(wrongSale.SaleToPOIRequest.MessageHeader, JSON.stringify(wrongSale), wrong.key);
  const answer = await getJsonResponse(wrong.local.localRequest, { SaleToPOIRequest: sealed });
  out("wrongkey", { error, answer: JSON.stringify(answer) });
})().catch((e) => { console.error("interop failed:", e && e.stack || e); process.exit(1); });
