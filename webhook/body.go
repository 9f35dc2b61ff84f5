package webhook

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"
)

// Envelope is everything in a delivery body except the event's data.
type Envelope struct {
	Event   string
	EntryID string
	// Time is when the event happened.
	Time        time.Time
	Attempt     int
	MaxAttempts int
	// LastError is why the previous attempt failed; "" is null.
	LastError string
	// StoreID is the store's id (config store_id); "" is null.
	StoreID string
}

// AppendBody appends the delivery body of DESIGN §6 to dst:
//
//	{"event":…,"entry_id":…,"timestamp":…,"attempt":…,"max_attempts":…,"last_error":…,"store_id":…,"data":…}
//
// data is copied byte for byte, never re-encoded, so the bytes the
// producer stored are the bytes inside the signed body. timestamp is when
// the event happened (RFC 3339 UTC, milliseconds); the signing time of an
// attempt travels in the timestamp headers. store_id lets events of many
// stores share one receiver, topic or stream (issue 18).
func AppendBody(dst []byte, e *Envelope, data []byte) []byte {
	dst = AppendBodyHead(dst, e)
	if len(data) == 0 {
		data = []byte("{}")
	}
	dst = append(dst, data...)
	return append(dst, '}')
}

// AppendBodyHead appends what AppendBody writes before data: the
// envelope up to and including `"data":`. AppendBodyHead(dst, e) followed
// by data (or `{}` when data is empty) and `}` is AppendBody(dst, e,
// data); the relay uses it to write the head into room left in front of
// the event's bytes as the store hands them over (outbox.claimReader).
func AppendBodyHead(dst []byte, e *Envelope) []byte {
	dst = append(dst, `{"event":`...)
	dst = appendString(dst, e.Event)
	dst = append(dst, `,"entry_id":`...)
	dst = appendString(dst, e.EntryID)
	dst = append(dst, `,"timestamp":"`...)
	dst = appendTimestamp(dst, e.Time.UTC())
	dst = append(dst, `","attempt":`...)
	dst = strconv.AppendInt(dst, int64(e.Attempt), 10)
	dst = append(dst, `,"max_attempts":`...)
	dst = strconv.AppendInt(dst, int64(e.MaxAttempts), 10)
	dst = append(dst, `,"last_error":`...)
	dst = appendStringOrNull(dst, e.LastError)
	dst = append(dst, `,"store_id":`...)
	dst = appendStringOrNull(dst, e.StoreID)
	dst = append(dst, `,"data":`...)
	return dst
}

// timestampLayout is the body's timestamp: RFC 3339, UTC, milliseconds.
const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

// appendTimestamp appends t, in UTC, as t.AppendFormat(dst,
// timestampLayout) does, digit by digit for years 0 to 9999 (every body
// carries one; the layout-driven formatter cost a relay worker ~0.2 µs
// per delivery) and through AppendFormat for any other year.
func appendTimestamp(dst []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 || t.Location() != time.UTC {
		return t.AppendFormat(dst, timestampLayout)
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

func appendStringOrNull(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendString(dst, s)
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

// crockford is the ULID alphabet: ids sort by time as text.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewEventID returns an entry_id: "evt_" and a ULID, 48 bits of
// milliseconds and 80 random bits, so ids from a reinstalled box never
// collide with old ones a receiver has deduplicated. It is the only
// maker of entry_ids: the outbox's events and the validation ping share
// it, so every event's entry_id has one shape.
func NewEventID(at time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(at.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("webhook: crypto/rand failed: " + err.Error())
	}
	// 128 bits as 26 base32 digits, most significant first.
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	out := make([]byte, 4+26)
	copy(out, "evt_")
	for i := 25; i >= 0; i-- {
		out[4+i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out)
}
