package domain_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/gamify/boost/domain"
)

// EncodeEvent writes what Marshal writes, for every envelope NewEventWithID
// builds, escapes and odd times included.
func TestEncodeEventIsMarshal(t *testing.T) {
	at := time.Date(2026, 12, 7, 15, 4, 5, 123456789, time.UTC)
	props := json.RawMessage(`{"a": [1, 2.50, "x<y>&"], "b": {"c": null}}`)
	cases := []struct {
		name    string
		id      string
		meta    domain.Meta
		payload any
	}{
		{"tracked", domain.NewID(), domain.Meta{AggregateType: "event", AggregateID: "a", ProjectID: domain.NewID(),
			OrganizationID: domain.NewID(), CorrelationID: "req-1", CausationID: domain.NewID(), OccurredAt: at},
			domain.TrackedData{Event: "Purchase", Properties: props}},
		{"no organization, project, correlation or causation", "id-1", domain.Meta{AggregateType: "usage", AggregateID: "k"},
			domain.KeyUsedData{KeyID: "k", LastUsedAt: at}},
		{"correlation id to escape", "id-2", domain.Meta{AggregateType: "event", CorrelationID: "a\"b\\c\n\u2028é<>"}, map[string]int{"n": 1}},
		{"id to escape", "id\x01", domain.Meta{}, map[string]int{}},
		{"whole seconds", "id-3", domain.Meta{OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, []int{}},
		{"another zone", "id-4", domain.Meta{OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 5, time.FixedZone("x", 3600))}, "s"},
		{"year 0", "id-5", domain.Meta{OccurredAt: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := domain.NewEventWithID(c.id, "EventTracked", c.meta, c.payload)
			if err != nil {
				t.Fatal(err)
			}
			want, err := domain.Marshal(&e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := domain.EncodeEvent(&e)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("EncodeEvent =\n%s (err %v)\nwant\n%s", got, err, want)
			}
			var back domain.Event // and what a consumer reads back encodes the same
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if again, _ := domain.EncodeEvent(&back); !bytes.Equal(again, want) {
				t.Fatalf("read back and encoded =\n%s\nwant\n%s", again, want)
			}
		})
	}
	if _, err := domain.EncodeEvent(&domain.Event{ID: "x", Data: json.RawMessage(`{}`), OccurredAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Fatal("EncodeEvent of year 10000 succeeded; Marshal refuses it")
	}
}

func FuzzEncodeEvent(f *testing.F) {
	f.Add("id", "req-1", "Purchase", `{"a":1}`, int64(1765119845123456789))
	f.Add("a\"b", "\u2028", "x\\y", `[1, 2]`, int64(-62167219200))
	f.Fuzz(func(t *testing.T, id, corr, name, props string, unixNano int64) {
		if !json.Valid([]byte(props)) {
			return
		}
		e, err := domain.NewEventWithID(id, "EventTracked", domain.Meta{AggregateType: "event", AggregateID: id, ProjectID: id,
			CorrelationID: corr, OccurredAt: time.Unix(0, unixNano).UTC()},
			domain.TrackedData{Event: name, Properties: json.RawMessage(props)})
		if err != nil {
			return
		}
		want, werr := domain.Marshal(&e)
		got, gerr := domain.EncodeEvent(&e)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("EncodeEvent = %s (err %v), Marshal = %s (err %v)", got, gerr, want, werr)
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	e, _ := domain.NewEventWithID(domain.NewID(), "EventTracked", domain.Meta{AggregateType: "event", AggregateID: domain.NewID(),
		ProjectID: domain.NewID(), OrganizationID: domain.NewID(), CausationID: domain.NewID(), OccurredAt: time.Now().UTC()},
		domain.TrackedData{Event: "Purchase", Properties: json.RawMessage(`{"amount":1999,"currency":"EUR","sku":"a-1","qty":2,"tags":["x","y"]}`)})
	b.Run("Marshal", func(b *testing.B) {
		for b.Loop() {
			domain.Marshal(&e) //nolint:errcheck
		}
	})
	b.Run("EncodeEvent", func(b *testing.B) {
		for b.Loop() {
			domain.EncodeEvent(&e) //nolint:errcheck
		}
	})
}
