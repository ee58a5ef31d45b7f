package projections

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/gamify/boost/domain"
)

// TestBulkDecoderAgreesWithEncodingJSON: the hand-written decoder either
// gives encoding/json's result or declines.
func TestBulkDecoderAgreesWithEncodingJSON(t *testing.T) {
	at := time.Date(2026, 11, 1, 10, 0, 0, 123456789, time.UTC)
	ts := at.Add(-time.Second)
	id := domain.NewID()
	tracked, _ := domain.NewEventWithID(id, domain.EventTracked, domain.Meta{AggregateType: domain.AggregateEvent, AggregateID: id,
		ProjectID: domain.NewID(), OccurredAt: at}, domain.TrackedData{Event: "purchase", UserID: "u\"1\\é", AnonymousID: "a<1>",
		Properties: json.RawMessage(`{"amount": 12, "currency":"EUR","nested":{"a":[1,"]}",{"b":null}]}}`),
		Context:    json.RawMessage(`{"ip":"1.2.3.4"}`), MessageID: "m1", Timestamp: &ts, ReceivedAt: at, KeyID: domain.NewID(), KeyType: domain.KeySecret})
	outcome, _ := domain.NewEventWithID(domain.NewID(), domain.EventFailed, domain.Meta{AggregateType: domain.AggregateEvent,
		ProjectID: domain.NewID(), OccurredAt: at}, domain.OutcomeData{EventID: id, Reason: "unsupported \u2028 currency", Attempts: 3})
	var inputs [][]byte
	for _, e := range []domain.Event{tracked, outcome} {
		b, _ := json.Marshal(&e)
		inputs = append(inputs, b)
	}
	inputs = append(inputs,
		[]byte(` { "id" : "x" , "type":"EventTracked", "data" : { "event":"a", "context": null, "properties": null, "timestamp": null } } `),
		[]byte(`{"id":"x","type":"EventTracked","data":{"event":"a","USERID":"u"}}`),
		[]byte(`{"id":"x","Type":"EventTracked"}`),
		[]byte(`{"id":"x","type":"EventTracked","data":{"event":"a\u00e9\n"}}`),
		[]byte(`{"id":"x","type":"EventTracked","data":{"properties":{"a":}}}`),
		[]byte(`{"id":"x","type":"EventTracked","data":{"occurredAt":"2026-11-01T10:00:00+01:00","receivedAt":"2026-11-01T10:00:00.5-02:00"}}`),
		[]byte(`{"id":"x","version":1,"extra":[1,{"a":"}"}],"type":"T"} x`),
		[]byte("{\"id\":\"\xff\"}"),
		// Unknown fields whose values are not JSON: encoding/json refuses
		// the record, so the decoder must decline it too.
		[]byte(`{"id":"x","type":"EventTracked","extra":tru,"data":{"event":"a"}}`),
		[]byte(`{"id":"x","type":"EventTracked","extra":{"a" "b"},"data":{"event":"a"}}`),
		[]byte(`{"id":"x","type":"EventTracked","data":{"event":"a","extra":[1,,2]}}`),
		[]byte(`{"id":"x","type":"EventTracked","data":{"event":"a","extra":01}}`),
		[]byte(`{}`),
		[]byte(`[]`),
	)
	for _, in := range inputs {
		var fast, ref bulkEnvelope
		ok := decodeBulkEnvelope(in, &fast)
		err := json.Unmarshal(in, &ref)
		if !ok {
			continue
		}
		if err != nil {
			t.Errorf("%s: decoded, but encoding/json says %v", in, err)
			continue
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Errorf("%s:\nfast %+v\nref  %+v", in, fast, ref)
		}
	}
	var env bulkEnvelope
	if !decodeBulkEnvelope(inputs[0], &env) || !decodeBulkEnvelope(inputs[1], &env) {
		t.Fatal("the decoder declines what the log holds")
	}
}

// TestBulkDecoderKnowsEveryField: every field of domain.TrackedData, set,
// is read by the hand-written decoder as encoding/json reads it, so a
// field added to the payload cannot be dropped silently by replays.
func TestBulkDecoderKnowsEveryField(t *testing.T) {
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var d domain.TrackedData
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Interface().(type) {
		case string:
			f.SetString("v" + v.Type().Field(i).Name)
		case domain.KeyType:
			f.SetString(string(domain.KeySecret))
		case json.RawMessage:
			f.SetBytes([]byte(`{"field":"` + v.Type().Field(i).Name + `"}`))
		case *time.Time:
			f.Set(reflect.ValueOf(&at))
		case time.Time:
			f.Set(reflect.ValueOf(at))
		default:
			t.Fatalf("TrackedData.%s is a %s: teach this test (and decodeBulkEnvelope) about it", v.Type().Field(i).Name, f.Type())
		}
	}
	e, err := domain.NewEventWithID(domain.NewID(), domain.EventTracked, domain.Meta{AggregateType: domain.AggregateEvent,
		ProjectID: domain.NewID(), OccurredAt: at}, d)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(&e)
	var fast, ref bulkEnvelope
	if !decodeBulkEnvelope(b, &fast) {
		t.Fatalf("the decoder declines %s", b)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, ref) || !reflect.DeepEqual(fast.Data.TrackedData, d) {
		t.Errorf("fast %+v\nref  %+v\nsent %+v", fast.Data.TrackedData, ref.Data.TrackedData, d)
	}
}

// FuzzDecodeTracked: what live apply reads of a payload is what
// encoding/json reads, and it fails where encoding/json fails. A payload
// reaches it valid (the envelope around it was decoded by encoding/json).
func FuzzDecodeTracked(f *testing.F) {
	at := time.Date(2026, 11, 1, 10, 0, 0, 123456789, time.UTC)
	full, _ := json.Marshal(domain.TrackedData{Event: "purchase", UserID: "u\"1\\é", AnonymousID: "a<1>", Properties: json.RawMessage(`{"a":[1,"]}"]}`),
		Context: json.RawMessage(`{"ip":"1.2.3.4"}`), MessageID: "m", Traits: json.RawMessage(`{"t":1}`), TraitsOnce: json.RawMessage(`{}`),
		PreviousID: "p", Integrations: json.RawMessage(`{"All":false}`), Timestamp: &at, SentAt: &at, ReceivedAt: at,
		KeyID: "k", KeyType: domain.KeySecret, Reason: "r", Code: "c", Outcome: domain.OutcomeFailed})
	for _, s := range []string{string(full), `{"event":"a","USERID":"u"}`, `{"event":5}`, `{"timestamp":"2026-11-01T10:00:00.5-02:00"}`,
		`{"timestamp":"2026-11-01T24:00:00Z"}`, `{"receivedAt":"2026-11-01T10:00:00,5Z"}`, `{"properties":null,"context":7,"eventId":"x"}`,
		`{"event":"a\u00e9\n","keyType":"secret"}`, `{}`, `[]`, `null`, `{"sentAt":null,"timestamp":null}`,
		`{"timestamp":"2026-11-01t10:00:00z"}`, `{"timestamp":"2026-11-01T10:00:00+24:00"}`, `{"sentAt":"0000-01-01T00:00:00Z"}`,
		`{"timestamp":"2026-11-01T10:00:00.Z"}`, `{"timestamp":"2026-11-01T10:00:00.1234567891Z"}`, `{"timestamp":"2026-11-01T10:00:00-00:60"}`,
		`{"receivedAt":"2026-02-30T10:00:00Z"}`, `{"timestamp":" 2026-11-01T10:00:00Z"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		e := &domain.Event{ID: "x", Type: domain.EventTracked, Data: data}
		got, gerr := decodeTracked(e)
		want, werr := domain.DecodeData[domain.TrackedData](e)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%s: decodeTracked err %v, encoding/json err %v", data, gerr, werr)
		}
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\nfast %+v\nref  %+v", data, got, want)
		}
	})
}

// FuzzBulkEnvelope: the replay's decoder reads a record as encoding/json
// does, or declines it; it never takes what encoding/json refuses.
func FuzzBulkEnvelope(f *testing.F) {
	f.Add([]byte(`{"id":"x","type":"EventTracked","projectId":"p","occurredAt":"2026-11-01T10:00:00Z","data":{"event":"a","properties":{"n":1}}}`))
	f.Add([]byte(`{"id":"x","type":"EventFailed","version":1,"extra":[1,{"a":"}"}],"data":{"eventId":"e","reason":"r"}}`))
	f.Add([]byte(`{"id":"x","type":"EventTracked","extra":tru,"data":{"event":"a"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var fast, ref bulkEnvelope
		if !decodeBulkEnvelope(in, &fast) {
			return
		}
		if err := json.Unmarshal(in, &ref); err != nil {
			t.Fatalf("%s: decoded, but encoding/json says %v", in, err)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%s:\nfast %+v\nref  %+v", in, fast, ref)
		}
	})
}

// FuzzEventEnvelope: the live runner reads a record's envelope as
// encoding/json does, or declines it; it never takes what encoding/json
// refuses.
func FuzzEventEnvelope(f *testing.F) {
	f.Add([]byte(`{"id":"x","type":"EventTracked","version":1,"aggregateType":"event","aggregateId":"x","organizationId":"o",` +
		`"projectId":"p","occurredAt":"2026-11-01T10:00:00.123456789Z","receivedAt":"2026-11-01T10:00:00Z","correlationId":"c",` +
		`"causationId":"k","data":{"event":"a","properties":{"n":1}}}`))
	f.Add([]byte(`{"id":"x","type":"EventFailed","version":-0,"extra":[1,{"a":"}"}],"data":null}`))
	f.Add([]byte(`{"id":"x","type":"EventTracked","version":1.0,"data":{}}`))
	f.Add([]byte(`{"id":"x","type":"EventTracked","version":99999999999999999999,"data":{}}`))
	f.Add([]byte(`{"id":"x","TYPE":"EventTracked","version":null,"data":{"a":tru}}`))
	f.Add([]byte(`{"id":"x\u00e9","type":"EventTracked","version":01}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var fast, ref domain.Event
		if !decodeEvent(in, &fast) {
			return
		}
		if err := json.Unmarshal(in, &ref); err != nil {
			t.Fatalf("%s: decoded, but encoding/json says %v", in, err)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("%s:\nfast %+v\nref  %+v", in, fast, ref)
		}
	})
}
