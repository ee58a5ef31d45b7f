package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gamify/boost/domain"
)

// Limits of one incoming event.
const (
	maxEventName     = 255
	maxIDLen         = 255
	maxPropertiesLen = 32 << 10
	maxNesting       = 32
	maxFutureSkew    = 24 * time.Hour
)

// wireEvent is an event as SDKs send it. Scalar fields are kept raw so a
// wrong type in one batch item rejects that item, naming the field, instead
// of failing the whole request.
type wireEvent struct {
	Event       json.RawMessage `json:"event"`
	Type        json.RawMessage `json:"type"`
	UserID      json.RawMessage `json:"userId"`
	AnonymousID json.RawMessage `json:"anonymousId"`
	Properties  json.RawMessage `json:"properties"`
	Traits      json.RawMessage `json:"traits"`
	Context     json.RawMessage `json:"context"`
	Timestamp   json.RawMessage `json:"timestamp"`
	SentAt      json.RawMessage `json:"sentAt"`
	MessageID   json.RawMessage `json:"messageId"`
}

// itemError is why one event was refused.
type itemError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func invalid(field, format string, args ...any) *itemError {
	return &itemError{Status: 400, Code: "invalid_request", Field: field, Message: fmt.Sprintf(format, args...)}
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func rawString(raw json.RawMessage, field string) (string, *itemError) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(field, "%s must be a string", field)
	}
	return s, nil
}

// rawTime parses an RFC 3339 string or epoch milliseconds.
func rawTime(raw json.RawMessage, field string) (*time.Time, *itemError) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, invalid(field, "%s must be RFC 3339 (e.g. 2026-11-28T10:00:00Z) or epoch milliseconds", field)
		}
		t = t.UTC()
		return &t, nil
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&n) == nil {
		ms, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || ms < 0 || ms > 1e15 {
			return nil, invalid(field, "%s must be whole epoch milliseconds", field)
		}
		t := time.UnixMilli(ms).UTC()
		return &t, nil
	}
	return nil, invalid(field, "%s must be RFC 3339 or epoch milliseconds", field)
}

// rawObject checks a JSON object within the size and nesting limits and
// returns it compacted.
func rawObject(raw json.RawMessage, field string) (json.RawMessage, *itemError) {
	if isNull(raw) {
		return nil, nil
	}
	t := bytes.TrimSpace(raw)
	if t[0] != '{' {
		return nil, invalid(field, "%s must be a JSON object", field)
	}
	if len(t) > maxPropertiesLen {
		return nil, invalid(field, "%s must be at most %d bytes (got %d)", field, maxPropertiesLen, len(t))
	}
	if depth(t) > maxNesting {
		return nil, invalid(field, "%s must nest at most %d levels", field, maxNesting)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, t); err != nil {
		return nil, invalid(field, "%s is not valid JSON", field)
	}
	return buf.Bytes(), nil
}

// depth is the deepest nesting of objects and arrays in valid JSON.
func depth(b []byte) int {
	d, maxD, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			d++
			maxD = max(maxD, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return maxD
}

// parsedEvent is a validated event ready to become a command.
type parsedEvent struct {
	data     domain.TrackedData
	identify bool
}

// parseEvent validates one event. nameRequired is false for identify calls
// (the event name is implied). batchSentAt applies when the event has none.
func parseEvent(w *wireEvent, keyType domain.KeyType, identifyCall bool, batchSentAt *time.Time, now time.Time) (*parsedEvent, *itemError) {
	var p parsedEvent
	var e *itemError
	d := &p.data
	if identifyCall {
		d.Event = domain.IdentifyEvent
	} else {
		raw, field := w.Event, "event"
		if isNull(raw) {
			raw, field = w.Type, "type"
		}
		if d.Event, e = rawString(raw, field); e != nil {
			return nil, e
		}
		if strings.TrimSpace(d.Event) == "" {
			return nil, invalid("event", "event is required (the event name, e.g. \"page_view\")")
		}
		if utf8.RuneCountInString(d.Event) > maxEventName {
			return nil, invalid("event", "event must be at most %d characters", maxEventName)
		}
	}
	if !domain.KeyAllows(keyType, d.Event) {
		return nil, forbidden(d.Event)
	}
	p.identify = identifyCall || domain.IsIdentify(d.Event)
	if d.UserID, e = rawString(w.UserID, "userId"); e != nil {
		return nil, e
	}
	if d.AnonymousID, e = rawString(w.AnonymousID, "anonymousId"); e != nil {
		return nil, e
	}
	if d.MessageID, e = rawString(w.MessageID, "messageId"); e != nil {
		return nil, e
	}
	for f, v := range map[string]string{"userId": d.UserID, "anonymousId": d.AnonymousID, "messageId": d.MessageID} {
		if len(v) > maxIDLen {
			return nil, invalid(f, "%s must be at most %d characters", f, maxIDLen)
		}
	}
	if p.identify && d.UserID == "" {
		return nil, invalid("userId", "userId is required to identify a user")
	}
	if d.UserID == "" && d.AnonymousID == "" {
		return nil, invalid("userId", "userId or anonymousId is required")
	}
	props, field := w.Properties, "properties"
	if isNull(props) {
		props, field = w.Traits, "traits"
	}
	if d.Properties, e = rawObject(props, field); e != nil {
		return nil, e
	}
	if d.Context, e = rawObject(w.Context, "context"); e != nil {
		return nil, e
	}
	if d.Timestamp, e = rawTime(w.Timestamp, "timestamp"); e != nil {
		return nil, e
	}
	if d.SentAt, e = rawTime(w.SentAt, "sentAt"); e != nil {
		return nil, e
	}
	if d.SentAt == nil {
		d.SentAt = batchSentAt
	}
	if d.Timestamp != nil && d.Timestamp.After(now.Add(maxFutureSkew)) {
		return nil, invalid("timestamp", "timestamp is more than 24 hours in the future")
	}
	if d.Timestamp != nil && domain.CorrectedTime(d.Timestamp, d.SentAt, now).After(now.Add(maxFutureSkew)) {
		return nil, invalid("timestamp", "timestamp corrected by sentAt is more than 24 hours in the future")
	}
	if domain.IsCommerce(d.Event) {
		if e := checkCommerce(d.Properties); e != nil {
			return nil, e
		}
	}
	d.ReceivedAt = now
	return &p, nil
}

// checkCommerce requires orderId, an integer amount in cents and a
// three-letter currency on purchase-like events.
func checkCommerce(props json.RawMessage) *itemError {
	var c struct {
		OrderID  json.RawMessage `json:"orderId"`
		Amount   json.RawMessage `json:"amount"`
		Currency json.RawMessage `json:"currency"`
	}
	if len(props) > 0 {
		_ = json.Unmarshal(props, &c)
	}
	if isNull(c.OrderID) {
		return invalid("properties.orderId", "properties.orderId is required for this event")
	}
	if s, e := rawString(c.OrderID, "properties.orderId"); e != nil || strings.TrimSpace(s) == "" {
		return invalid("properties.orderId", "properties.orderId must be a non-empty string")
	}
	if isNull(c.Amount) {
		return invalid("properties.amount", "properties.amount is required: an integer number of cents")
	}
	a := string(bytes.TrimSpace(c.Amount))
	if n, err := strconv.ParseInt(a, 10, 64); err != nil || n < 0 {
		return invalid("properties.amount", "properties.amount must be a non-negative integer number of cents, not %s", truncateStr(a, 32))
	}
	cur, e := rawString(c.Currency, "properties.currency")
	if e != nil || len(cur) != 3 || !isLetters(cur) {
		return invalid("properties.currency", "properties.currency must be a 3-letter ISO 4217 code such as \"EUR\"")
	}
	return nil
}

func isLetters(s string) bool {
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

func truncateStr(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
