package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gamify/boost/app"
	"github.com/gamify/boost/domain"
)

// wireEvent is an event as SDKs send it, in Boost's own shape or Segment's
// (which RudderStack and the seed product's SDKs share). Scalar fields are
// kept raw so a wrong type in one batch item rejects that item, naming the
// field, instead of failing the whole request.
type wireEvent struct {
	Event             json.RawMessage
	Type              json.RawMessage
	Name              json.RawMessage
	Category          json.RawMessage
	UserID            json.RawMessage
	AnonymousID       json.RawMessage
	PreviousID        json.RawMessage
	GroupID           json.RawMessage
	Properties        json.RawMessage
	Traits            json.RawMessage
	Context           json.RawMessage
	Integrations      json.RawMessage
	Timestamp         json.RawMessage
	OriginalTimestamp json.RawMessage
	SentAt            json.RawMessage
	MessageID         json.RawMessage
}

// UnmarshalJSON matches field names exactly. encoding/json would match
// them case-insensitively, so {"EVENT":"purchase","event":"click"} would
// mean something different to Boost than to any proxy or SDK that reads
// it by the spec; here "EVENT" is an unknown field, ignored.
func (w *wireEvent) UnmarshalJSON(b []byte) error { return w.readBody(b) }

func (w *wireEvent) readBody(b []byte) error { return exactFields(b, w.fields()) }

// fields are the wire fields by their exact names.
func (w *wireEvent) fields() map[string]*json.RawMessage {
	return map[string]*json.RawMessage{"event": &w.Event, "type": &w.Type, "name": &w.Name,
		"category": &w.Category, "userId": &w.UserID, "anonymousId": &w.AnonymousID, "previousId": &w.PreviousID,
		"groupId": &w.GroupID, "properties": &w.Properties, "traits": &w.Traits, "context": &w.Context,
		"integrations": &w.Integrations, "timestamp": &w.Timestamp, "originalTimestamp": &w.OriginalTimestamp,
		"sentAt": &w.SentAt, "messageId": &w.MessageID}
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
			// An ISO 8601 time without a zone (the seed product's guide
			// sends them) is UTC, as the server's clock is.
			if t, err = time.Parse(zonelessISO, s); err != nil {
				return nil, invalid(field, "%s must be RFC 3339 (e.g. 2026-11-28T10:00:00Z) or epoch milliseconds", field)
			}
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

// zonelessISO is an ISO 8601 date and time with no zone, to nanoseconds.
const zonelessISO = "2006-01-02T15:04:05.999999999"

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
	props, field := w.Properties, "properties"
	if isNull(props) {
		props, field = w.Traits, "traits"
	}
	if d.Properties, e = rawObject(props, field); e != nil {
		return d, e
	}
	if domain.IsIdentify(d.Event) {
		// The seed product's SDK sends an identify's traits as
		// properties.traits.
		if t, ok := objectField(d.Properties, "traits"); ok {
			d.Traits = t
		}
	}
	if e = decodeCommon(w, &d); e != nil {
		return d, e
	}
	d.Timestamp, e = rawTime(w.Timestamp, "timestamp")
	return d, e
}

// decodeCommon reads the fields Boost's shape and Segment's share.
func decodeCommon(w *wireEvent, d *domain.TrackedData) *itemError {
	var e *itemError
	for _, f := range []struct {
		raw   json.RawMessage
		field string
		dst   *string
	}{{w.UserID, "userId", &d.UserID}, {w.AnonymousID, "anonymousId", &d.AnonymousID},
		{w.MessageID, "messageId", &d.MessageID}, {w.PreviousID, "previousId", &d.PreviousID}} {
		if *f.dst, e = rawID(f.raw, f.field); e != nil {
			return e
		}
	}
	if d.Context, e = rawObject(w.Context, "context"); e != nil {
		return e
	}
	if d.Integrations, e = rawObject(w.Integrations, "integrations"); e != nil {
		return e
	}
	d.SentAt, e = rawTime(w.SentAt, "sentAt")
	return e
}

// objectField returns the object value of a top-level field of obj.
func objectField(obj json.RawMessage, name string) (json.RawMessage, bool) {
	raw, _ := hasField(obj, name)
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		return t, true
	}
	return nil, false
}
