package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
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

// UnmarshalJSON matches field names exactly. encoding/json would match
// them case-insensitively, so {"EVENT":"purchase","event":"click"} would
// mean something different to Boost than to any proxy or SDK that reads
// it by the spec; here "EVENT" is an unknown field, ignored.
func (w *wireEvent) UnmarshalJSON(b []byte) error {
	return exactFields(b, map[string]*json.RawMessage{"event": &w.Event, "type": &w.Type, "userId": &w.UserID,
		"anonymousId": &w.AnonymousID, "properties": &w.Properties, "traits": &w.Traits, "context": &w.Context,
		"timestamp": &w.Timestamp, "sentAt": &w.SentAt, "messageId": &w.MessageID})
}

// exactFields decodes a JSON object, keeping the raw value of each field
// whose name is exactly one of fields (the last one when repeated).
func exactFields(b []byte, fields map[string]*json.RawMessage) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		return &json.UnmarshalTypeError{Value: "null", Type: reflect.TypeFor[map[string]json.RawMessage]()}
	}
	for k, v := range m {
		if p, ok := fields[k]; ok {
			*p = v
		}
	}
	return nil
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

// rawString reads an optional JSON string, refusing what encoding/json
// would silently rewrite (invalid UTF-8, bad surrogates) and what no
// database can store (NUL).
func rawString(raw json.RawMessage, field string) (string, *itemError) {
	if isNull(raw) {
		return "", nil
	}
	s, err := domain.DecodeString(field, raw)
	if err != nil {
		return "", fieldItemError(err)
	}
	return s, nil
}

// fieldItemError shows a domain validation error as the item's 400.
func fieldItemError(err error) *itemError {
	var fe *domain.FieldError
	if errors.As(err, &fe) {
		return invalid(fe.Field, "%s", fe.Error())
	}
	return invalid("", "%v", err)
}

// rawID reads an optional id; a blank one (only white space and invisible
// characters) counts as missing.
func rawID(raw json.RawMessage, field string) (string, *itemError) {
	s, e := rawString(raw, field)
	if e != nil || domain.Blank(s) {
		return "", e
	}
	return s, nil
}

// rawTime parses an RFC 3339 string or epoch milliseconds. Its range is
// checked with the event's other times (domain.CheckTimes).
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
		if err != nil || ms < 0 || ms > maxEpochMillis {
			return nil, invalid(field, "%s must be whole epoch milliseconds from 0 to %d", field, int64(maxEpochMillis))
		}
		t := time.UnixMilli(ms).UTC()
		return &t, nil
	}
	return nil, invalid(field, "%s must be RFC 3339 or epoch milliseconds", field)
}

// maxEpochMillis is the last millisecond of year 9999: beyond it a time
// has no RFC 3339 form.
const maxEpochMillis = 253402300799999

// rawObject reads an optional JSON object, compacted; what it may hold is
// the domain's to check (domain.ValidateTracked).
func rawObject(raw json.RawMessage, field string) (json.RawMessage, *itemError) {
	if isNull(raw) {
		return nil, nil
	}
	t := bytes.TrimSpace(raw)
	if t[0] != '{' {
		return nil, invalid(field, "%s must be a JSON object", field)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, t); err != nil {
		return nil, invalid(field, "%s is not valid JSON", field)
	}
	return buf.Bytes(), nil
}

// problem is an item the port could not decode.
func problem(e *itemError) *app.Error {
	return &app.Error{Kind: app.Invalid, Field: e.Field, Message: e.Message}
}

// call says which endpoint an event came through: an identify call implies
// the event name.
type call int

const (
	trackCall call = iota
	identifyCall
)

// decodeEvent reads one event off the wire into what the ingestion use
// case takes, which validates it. batchSentAt applies when the event has
// none.
func decodeEvent(w *wireEvent, c call, batchSentAt *time.Time) app.Incoming {
	d, e := decodeFields(w, c)
	if e != nil {
		return app.Incoming{Problem: problem(e)}
	}
	if d.SentAt == nil {
		d.SentAt = batchSentAt
	}
	return app.Incoming{Event: d}
}

func decodeFields(w *wireEvent, c call) (domain.TrackedData, *itemError) {
	var d domain.TrackedData
	var e *itemError
	if c == identifyCall {
		d.Event = domain.IdentifyEvent
	} else {
		raw, field := w.Event, "event"
		if isNull(raw) {
			raw, field = w.Type, "type"
		}
		if d.Event, e = rawString(raw, field); e != nil {
			return d, e
		}
	}
	if d.UserID, e = rawID(w.UserID, "userId"); e != nil {
		return d, e
	}
	if d.AnonymousID, e = rawID(w.AnonymousID, "anonymousId"); e != nil {
		return d, e
	}
	if d.MessageID, e = rawID(w.MessageID, "messageId"); e != nil {
		return d, e
	}
	props, field := w.Properties, "properties"
	if isNull(props) {
		props, field = w.Traits, "traits"
	}
	if d.Properties, e = rawObject(props, field); e != nil {
		return d, e
	}
	if d.Context, e = rawObject(w.Context, "context"); e != nil {
		return d, e
	}
	if d.Timestamp, e = rawTime(w.Timestamp, "timestamp"); e != nil {
		return d, e
	}
	d.SentAt, e = rawTime(w.SentAt, "sentAt")
	return d, e
}
