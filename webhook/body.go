package webhook

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendBody appends the delivery body of DESIGN §6 to dst:
//
//	{"event":…,"entry_id":…,"timestamp":…,"attempt":…,"max_attempts":…,"last_error":…,"data":…}
//
// data is copied byte for byte, never re-encoded, so the bytes the
// producer stored are the bytes inside the signed body. timestamp is when
// the event happened (RFC 3339 UTC, milliseconds); the signing time of an
// attempt travels in the timestamp headers. lastError "" is null.
func AppendBody(dst []byte, event, entryID string, at time.Time, attempt, maxAttempts int, lastError string, data []byte) []byte {
	dst = append(dst, `{"event":`...)
	dst = appendString(dst, event)
	dst = append(dst, `,"entry_id":`...)
	dst = appendString(dst, entryID)
	dst = append(dst, `,"timestamp":"`...)
	dst = at.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","attempt":`...)
	dst = strconv.AppendInt(dst, int64(attempt), 10)
	dst = append(dst, `,"max_attempts":`...)
	dst = strconv.AppendInt(dst, int64(maxAttempts), 10)
	dst = append(dst, `,"last_error":`...)
	if lastError == "" {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, lastError)
	}
	dst = append(dst, `,"data":`...)
	if len(data) == 0 {
		data = []byte("{}")
	}
	dst = append(dst, data...)
	return append(dst, '}')
}

// appendString appends s as a JSON string. Event types and ids are plain
// ASCII and are copied as they are; anything else goes through
// encoding/json.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
