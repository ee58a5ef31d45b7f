package commands

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/gamify/boost/domain"
)

func sampleTrackEvents() *TrackEvents {
	at := time.Date(2026, 12, 7, 18, 0, 0, 123456000, time.UTC)
	ts := at.Add(-time.Minute)
	c := &TrackEvents{Header: Header{CommandID: domain.NewID(), CorrelationID: "corr", IssuedAt: at}}
	for i, name := range []string{"page_view", "purchase", "$identify"} {
		c.Events = append(c.Events, TrackEvent{EventID: domain.NewID(), ProjectID: domain.NewID(), OrganizationID: domain.NewID(),
			OccurredAt: at.Add(time.Duration(i) * time.Second), Event: domain.TrackedData{Event: name, UserID: "u\"1\\é<>",
				AnonymousID: "a", Properties: json.RawMessage(`{"amount":12.5,"currency":"EUR","tags":["a","]}"],"n":null}`),
				Context: json.RawMessage(`{"ip":"1.2.3.4"}`), MessageID: "m-1", Traits: json.RawMessage(`{"plan":"pro"}`),
				Integrations: json.RawMessage(`{"All":false}`), Timestamp: &ts, ReceivedAt: at, KeyID: domain.NewID(),
				KeyType: domain.KeySecret}})
	}
	c.Events[1].CorrelationID = "own"
	return c
}

// TestDecodeTrackEventsReadsWhatTheBusWrites: a command as the bus
// marshals it takes the one-pass path, and reads back as sent.
func TestDecodeTrackEventsReadsWhatTheBusWrites(t *testing.T) {
	sent := sampleTrackEvents()
	msg, err := marshaler().Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	var fast TrackEvents
	if !decodeTrackEvents(msg.Payload, &fast) {
		t.Fatalf("the one-pass decoder declines a command the bus wrote: %s", msg.Payload)
	}
	var ref TrackEvents
	if err := json.Unmarshal(msg.Payload, &ref); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, ref) {
		t.Errorf("fast %+v\nref  %+v", fast, ref)
	}
	var got TrackEvents
	if err := marshaler().Unmarshal(message.NewMessage("x", msg.Payload), &got); err != nil || !reflect.DeepEqual(got, ref) {
		t.Errorf("Unmarshal: %v, %+v", err, got)
	}
}

// FuzzDecodeTrackEvents: the one-pass decoder reads a command as
// encoding/json does, or declines it; it never takes what encoding/json
// refuses.
func FuzzDecodeTrackEvents(f *testing.F) {
	b, _ := domain.Marshal(sampleTrackEvents())
	f.Add(b)
	for _, s := range []string{`{"commandId":"c","events":[]}`, `{"events":[{"eventId":"e","event":{"event":"a"}}],"events":[]}`,
		`{"events":null}`, `{"events":[null]}`, `{"EVENTS":[]}`, `{"events":[{"Event":{}}]}`, `{"events":[{"event":null}]}`,
		`{"events":[{"event":{"event":"a"},"event":{"userId":"u"}}]}`, `{"issuedAt":"2026-11-01T24:00:00Z"}`,
		`{"events":[{"occurredAt":"2026-11-01t10:00:00z"}]}`, `{"extra":tru}`, `{"events":[{"event":{"properties":{"a":1}}}],}`,
		`{"events":[{"event":{"keyType":null,"timestamp":null}}]}`, `{"commandId":"\u00e9","x":[1,{"a":"}"}]}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var fast, ref TrackEvents
		if !decodeTrackEvents(in, &fast) {
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
