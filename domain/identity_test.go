package domain_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gamify/boost/domain"
)

func TestWholeAmount(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"amount":1999}`, `{"amount":1999}`},
		{`{"amount":1999.0000000000002}`, `{"amount":1999}`},
		{`{"amount":1999.0000000002}`, `{"amount":1999}`},
		{`{"amount":1998.9999999999998,"currency":"EUR"}`, `{"amount":1999,"currency":"EUR"}`},
		{`{"amount":1999.0}`, `{"amount":1999}`},
		{`{"amount":1.999e3}`, `{"amount":1999}`},
		{`{"amount": 0.30000000000000004}`, `{"amount": 0.30000000000000004}`}, // 0.3 is not a whole number
		{`{"amount":19.99}`, `{"amount":19.99}`},
		{`{"amount":1999.001}`, `{"amount":1999.001}`},
		{`{"amount":"1999.0"}`, `{"amount":"1999.0"}`},
		{`{"amount":null}`, `{"amount":null}`},
		{`{"price":1999.0000000000002}`, `{"price":1999.0000000000002}`},
		{`{"nested":{"amount":1.5},"amount":2.0000000000000004}`, `{"nested":{"amount":1.5},"amount":2}`},
		{`{"amount":1.5,"amount":3.0}`, `{"amount":1.5,"amount":3}`}, // the last one counts, as encoding/json reads it
		{`{"amount":1e400}`, `{"amount":1e400}`},
		{`{"amount":99999999999.99998}`, `{"amount":100000000000}`},
		{`{"amount":12345678901234567890.0}`, `{"amount":12345678901234567890.0}`},
		{`not json`, `not json`},
		{``, ``},
	} {
		if got := string(domain.WholeAmount(json.RawMessage(c.in))); got != c.want {
			t.Errorf("WholeAmount(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestIdentity(t *testing.T) {
	obj := func(s string) json.RawMessage { return json.RawMessage(s) }
	for _, c := range []struct {
		name string
		d    domain.TrackedData
		want domain.Identity
	}{
		{"a track says nothing", domain.TrackedData{Event: "click", UserID: "u", AnonymousID: "a", Properties: obj(`{"x":1}`)},
			domain.Identity{}},
		{"an identify sets its properties and links its anonymous id",
			domain.TrackedData{Event: "$identify", UserID: "u", AnonymousID: "a", Properties: obj(`{"plan":"pro"}`)},
			domain.Identity{Set: obj(`{"plan":"pro"}`), Links: []string{"a"}}},
		{"an identify with traits sets those, not its properties",
			domain.TrackedData{Event: "$identify", UserID: "u", Properties: obj(`{"$lib":"web"}`), Traits: obj(`{"plan":"pro"}`)},
			domain.Identity{Set: obj(`{"plan":"pro"}`)}},
		{"a capture with $set and $set_once", domain.TrackedData{Event: "Plan Changed", UserID: "u",
			Traits: obj(`{"plan":"pro"}`), TraitsOnce: obj(`{"first":"free"}`)},
			domain.Identity{Set: obj(`{"plan":"pro"}`), SetOnce: obj(`{"first":"free"}`)}},
		{"an alias links its previous id", domain.TrackedData{Event: domain.AliasEvent, UserID: "u", PreviousID: "old"},
			domain.Identity{Links: []string{"old"}}},
		{"an alias to itself links nothing", domain.TrackedData{Event: domain.AliasEvent, UserID: "u", PreviousID: "u"},
			domain.Identity{}},
		{"a look-alike identify is an identify", domain.TrackedData{Event: "$IDENTIFY", UserID: "u", AnonymousID: "a"},
			domain.Identity{Links: []string{"a"}}},
	} {
		if got := c.d.Identity(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Identity() = %+v, want %+v", c.name, got, c.want)
		}
	}
}
