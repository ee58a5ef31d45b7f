package projections

import (
	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/jsonscan"
)

// decodeBulkEnvelope decodes the events topic's records without
// reflection: the fields the bulk build reads, in one pass. It reports
// false on anything it does not expect (escaped keys, a key that only
// matches a field case-insensitively, invalid UTF-8, malformed JSON…),
// and the caller then decodes with encoding/json, whose result is the
// reference. Raw values (properties, context) alias v.
func decodeBulkEnvelope(v []byte, env *bulkEnvelope) bool {
	d := jsonscan.New(v)
	ok := d.Object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.Str(&env.ID)
		case "type":
			return d.Str(&env.Type)
		case "projectId":
			return d.Str(&env.ProjectID)
		case "occurredAt":
			return d.Time(&env.OccurredAt)
		case "receivedAt":
			return d.Time(&env.ReceivedAt)
		case "data":
			return d.Object(func(key []byte) bool { return dataField(d, key, env) })
		}
		return d.Other(key, envelopeKeys)
	})
	return ok && d.End()
}

var envelopeKeys = jsonscan.FieldNames[bulkEnvelope]()

// dataKeys are domain.TrackedData's fields and OutcomeData's eventId.
var dataKeys = jsonscan.FieldNames[bulkData]()

func dataField(d *jsonscan.Scanner, key []byte, env *bulkEnvelope) bool {
	if string(key) == "eventId" {
		return d.Str(&env.Data.EventID)
	}
	if known, ok := domain.ScanTrackedField(d, key, &env.Data.TrackedData); known {
		return ok
	}
	return d.Other(key, dataKeys)
}

// decodeTracked decodes a tracked event's payload with the decoder the
// bulk build reads the log with, and with encoding/json (the reference)
// where that declines: live apply and replay read a payload alike, in one
// pass, where encoding/json validated it before decoding it.
// FuzzDecodeTracked ties the two.
func decodeTracked(e *domain.Event) (domain.TrackedData, error) {
	var env bulkEnvelope
	d := jsonscan.New(e.Data)
	if d.Object(func(key []byte) bool { return dataField(d, key, &env) }) && d.End() {
		return env.Data.TrackedData, nil
	}
	return domain.DecodeData[domain.TrackedData](e)
}

// decodeEvent decodes a record's event envelope as encoding/json would,
// in one pass (encoding/json validates the whole record, then decodes it
// by reflection: 6 % of boost dev's CPU under load). Like
// decodeBulkEnvelope it reports false on anything it does not expect, and
// the caller then decodes with encoding/json. Data aliases v and is
// validated, as encoding/json validates a json.RawMessage.
// FuzzEventEnvelope ties the two.
func decodeEvent(v []byte, e *domain.Event) bool {
	d := jsonscan.New(v)
	ok := d.Object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.Str(&e.ID)
		case "type":
			return d.Str(&e.Type)
		case "version":
			return d.Int(&e.Version)
		case "aggregateType":
			return d.Str(&e.AggregateType)
		case "aggregateId":
			return d.Str(&e.AggregateID)
		case "organizationId":
			return d.Str(&e.OrganizationID)
		case "projectId":
			return d.Str(&e.ProjectID)
		case "occurredAt":
			return d.Time(&e.OccurredAt)
		case "receivedAt":
			return d.Time(&e.ReceivedAt)
		case "correlationId":
			return d.Str(&e.CorrelationID)
		case "causationId":
			return d.Str(&e.CausationID)
		case "data":
			return d.Raw(&e.Data)
		}
		return d.Other(key, eventKeys)
	})
	return ok && d.End()
}

var eventKeys = jsonscan.FieldNames[domain.Event]()
