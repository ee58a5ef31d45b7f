package domain

import (
	"strconv"
	"time"
)

// EncodeEvent is Marshal(e), byte for byte, without encoding/json's second
// pass over the payload: encoding/json validates and compacts every
// json.RawMessage it writes, so the envelope of a tracked event cost as much
// as its payload again, on every append (4 % of the CPU under batch load).
// Data is Marshal's output wherever an Event is built (NewEventWithID) or
// read back (from a compact envelope), so it is written as it is. An event
// whose strings need escaping, or whose times encoding/json would write
// otherwise, takes Marshal itself.
func EncodeEvent(e *Event) ([]byte, error) {
	if len(e.Data) == 0 || !plainJSON(e.ID) || !plainJSON(e.Type) || !plainJSON(e.AggregateType) ||
		!plainJSON(e.AggregateID) || !plainJSON(e.OrganizationID) || !plainJSON(e.ProjectID) ||
		!plainJSON(e.CorrelationID) || !plainJSON(e.CausationID) || !plainTime(e.OccurredAt) || !plainTime(e.ReceivedAt) {
		return Marshal(e)
	}
	b := make([]byte, 0, 320+len(e.Data))
	b = append(b, `{"id":"`...)
	b = append(b, e.ID...)
	b = append(b, `","type":"`...)
	b = append(b, e.Type...)
	b = append(b, `","version":`...)
	b = strconv.AppendInt(b, int64(e.Version), 10)
	b = appendField(b, "aggregateType", e.AggregateType, false)
	b = appendField(b, "aggregateId", e.AggregateID, false)
	b = appendField(b, "organizationId", e.OrganizationID, true)
	b = appendField(b, "projectId", e.ProjectID, true)
	b = append(b, `,"occurredAt":"`...)
	b = e.OccurredAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","receivedAt":"`...)
	b = e.ReceivedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "correlationId", e.CorrelationID, true)
	b = appendField(b, "causationId", e.CausationID, true)
	b = append(b, `,"data":`...)
	b = append(b, e.Data...)
	return append(b, '}'), nil
}

// appendField appends ,"name":"v" (nothing for an empty v with
// omitEmpty); v is plainJSON.
func appendField(b []byte, name, v string, omitEmpty bool) []byte {
	if omitEmpty && v == "" {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":"`...)
	b = append(b, v...)
	return append(b, '"')
}

// plainJSON reports whether encoding/json writes s as it is between quotes:
// printable ASCII but for '"' and '\'.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// plainTime reports whether encoding/json writes t as its RFC 3339 form
// with nanoseconds: a UTC time within the years it accepts.
func plainTime(t time.Time) bool {
	y := t.Year()
	return t.Location() == time.UTC && y >= 0 && y <= 9999
}
