package nexo

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
)

// The two wrappers a message travels in.
const (
	WrapRequest  = "SaleToPOIRequest"  // sale system → terminal, and the terminal's notifications
	WrapResponse = "SaleToPOIResponse" // terminal → sale system
)

// SecurityTrailer is the clear part of a sealed message that says how to
// open it. All five fields are required (OpenAPI SecurityTrailer).
type SecurityTrailer struct {
	AdyenCryptoVersion Int    `json:"AdyenCryptoVersion"`
	KeyIdentifier      string `json:"KeyIdentifier"`
	KeyVersion         Int    `json:"KeyVersion"`
	Nonce              string `json:"Nonce"`
	Hmac               string `json:"Hmac"`
}

type sealedBody struct {
	MessageHeader   json.RawMessage  `json:"MessageHeader,omitempty"`
	NexoBlob        string           `json:"NexoBlob"`
	SecurityTrailer *SecurityTrailer `json:"SecurityTrailer"`
}

// Seal wraps plaintext, the whole inner message including its wrapper
// ({"SaleToPOIRequest":{...}}), in the envelope of AdyenCryptoVersion 1:
// a clear copy of header, the ciphertext and the trailer. nonce comes from
// r (crypto/rand when nil).
func Seal(k *Key, wrapper string, header *Header, plaintext []byte, r io.Reader) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	var nonce [nonceLen]byte
	if _, err := io.ReadFull(r, nonce[:]); err != nil {
		return nil, fmt.Errorf("nexo nonce: %w", err)
	}
	return sealWith(k, wrapper, header, plaintext, nonce)
}

func sealWith(k *Key, wrapper string, header *Header, plaintext []byte, nonce [nonceLen]byte) ([]byte, error) {
	ct, mac := k.seal(plaintext, nonce)
	var hdr json.RawMessage
	if header != nil {
		b, err := json.Marshal(header)
		if err != nil {
			return nil, fmt.Errorf("encode nexo header: %w", err)
		}
		hdr = b
	}
	body := sealedBody{
		MessageHeader: hdr,
		NexoBlob:      base64.StdEncoding.EncodeToString(ct),
		SecurityTrailer: &SecurityTrailer{
			AdyenCryptoVersion: cryptoVersion, KeyIdentifier: k.ID, KeyVersion: Int(k.Version),
			Nonce: base64.StdEncoding.EncodeToString(nonce[:]), Hmac: base64.StdEncoding.EncodeToString(mac),
		},
	}
	out, err := json.Marshal(map[string]sealedBody{wrapper: body})
	if err != nil {
		return nil, fmt.Errorf("encode nexo envelope: %w", err)
	}
	return out, nil
}

// Keys finds the key a sealed message names; nil if there is none.
type Keys func(id string, version int) *Key

// Single is a Keys that knows one key.
func Single(k *Key) Keys {
	return func(id string, version int) *Key {
		if k != nil && id == k.ID && version == k.Version {
			return k
		}
		return nil
	}
}

// Open unseals body and returns its wrapper name and the plaintext inner
// message, after checking that the plaintext is the same wrapper. Any
// fault in the crypto, an unknown key included, is ErrCrypto; a body that
// is not a sealed envelope at all is a *FormatError.
func Open(keys Keys, body []byte) (wrapper string, plaintext []byte, err error) {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(body, &outer); err != nil {
		return "", nil, &FormatError{Reason: "not a JSON object: " + err.Error()}
	}
	if len(outer) != 1 {
		return "", nil, &FormatError{Reason: "want exactly one of SaleToPOIRequest or SaleToPOIResponse"}
	}
	var raw json.RawMessage
	for wrapper, raw = range outer {
	}
	if wrapper != WrapRequest && wrapper != WrapResponse {
		return "", nil, &FormatError{Reason: "unknown top-level field " + wrapper}
	}
	var sb sealedBody
	if err := json.Unmarshal(raw, &sb); err != nil {
		return "", nil, &FormatError{Reason: wrapper + ": " + err.Error()}
	}
	if sb.SecurityTrailer == nil || sb.NexoBlob == "" {
		return "", nil, &FormatError{Reason: wrapper + ": not encrypted (no NexoBlob or SecurityTrailer)"}
	}
	tr := sb.SecurityTrailer
	if tr.AdyenCryptoVersion != cryptoVersion {
		return "", nil, ErrCrypto
	}
	k := keys(tr.KeyIdentifier, int(tr.KeyVersion))
	if k == nil {
		return "", nil, ErrCrypto
	}
	ct, err1 := base64.StdEncoding.DecodeString(sb.NexoBlob)
	nonce, err2 := base64.StdEncoding.DecodeString(tr.Nonce)
	mac, err3 := base64.StdEncoding.DecodeString(tr.Hmac)
	if err1 != nil || err2 != nil || err3 != nil {
		return "", nil, ErrCrypto
	}
	pt, err := k.open(ct, nonce, mac)
	if err != nil {
		return "", nil, err
	}
	// The authenticated plaintext must be the same kind of message as the
	// clear wrapper says.
	var inner map[string]json.RawMessage
	if json.Unmarshal(pt, &inner) != nil || len(inner) != 1 || inner[wrapper] == nil {
		return "", nil, &FormatError{Reason: "decrypted message is not a " + wrapper}
	}
	return wrapper, pt, nil
}

// FormatError is a message that is not what the protocol allows.
type FormatError struct{ Reason string }

func (e *FormatError) Error() string { return "nexo: malformed message: " + e.Reason }

// isSealed reports whether body looks like an envelope (has a NexoBlob).
func isSealed(body []byte) bool { return bytes.Contains(body, []byte(`"NexoBlob"`)) }
