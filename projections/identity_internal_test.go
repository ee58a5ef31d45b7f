package projections

import (
	"encoding/json"
	"testing"

	"github.com/gamify/boost/readmodel"
)

// Apply folds a batch's trait writes first and merges the stored user's
// traits after (userFold.mergeStored): the result must be what folding
// the stored traits first gives, whatever the versions.
func TestTraitsMergeAsIfStoredCameFirst(t *testing.T) {
	for _, c := range []struct {
		name                   string
		stored, storedVersions string // the stored user's columns
		batch                  map[string][2]string
		want, wantVersions     string
	}{
		{"a later write wins", `{"plan":"a"}`, `{"plan":"v1"}`, map[string][2]string{"plan": {`"b"`, "v2"}},
			`{"plan":"b"}`, `{"plan":"v2"}`},
		{"a later stored trait wins", `{"plan":"a"}`, `{"plan":"v2"}`, map[string][2]string{"plan": {`"b"`, "v1"}},
			`{"plan":"a"}`, `{"plan":"v2"}`},
		{"the same write, stored and re-sent", `{"plan":"a"}`, `{"plan":"v1"}`, map[string][2]string{"plan": {`"a"`, "v1"}},
			`{"plan":"a"}`, `{"plan":"v1"}`},
		{"an unversioned stored trait loses to any write", `{"plan":"a"}`, `{}`, map[string][2]string{"plan": {`"b"`, "v1"}},
			`{"plan":"b"}`, `{"plan":"v1"}`},
		{"an unversioned stored trait nobody writes stays unversioned", `{"plan":"a","n":1}`, `{"n":"v1"}`,
			map[string][2]string{"n": {`2`, "v2"}}, `{"n":2,"plan":"a"}`, `{"n":"v2"}`},
		{"traits the batch does not write stay", `{"plan":"a"}`, `{"plan":"v9"}`, map[string][2]string{"n": {`1`, "v1"}},
			`{"n":1,"plan":"a"}`, `{"n":"v1","plan":"v9"}`},
		{"a user stored without traits", `{}`, `{}`, map[string][2]string{"n": {`1`, "v1"}}, `{"n":1}`, `{"n":"v1"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var tr userTraits
			for name, w := range c.batch {
				tr.write(json.RawMessage(`{"`+name+`":`+w[0]+`}`), w[1])
			}
			tr.merge(&readmodel.EndUser{Traits: json.RawMessage(c.stored), TraitVersions: json.RawMessage(c.storedVersions)})
			var u readmodel.EndUser
			if err := tr.encode(&u); err != nil {
				t.Fatal(err)
			}
			if string(u.Traits) != c.want || string(u.TraitVersions) != c.wantVersions {
				t.Errorf("traits %s versions %s, want %s and %s", u.Traits, u.TraitVersions, c.want, c.wantVersions)
			}
		})
	}
}
