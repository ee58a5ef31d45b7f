package projections

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/readmodel"
)

// userTraits are a user's traits and, per trait, the version of the write
// that set it. The live fold and the bulk build both apply events'
// identities through it, so a replay folds traits as the live projection
// did, whatever order events arrive in.
type userTraits struct {
	values   map[string]json.RawMessage
	versions map[string]string
}

// apply folds one event's trait writes: a set wins over an older set and
// over every set-once; a set-once only over a later set-once.
func (t *userTraits) apply(id domain.Identity, r *readmodel.Event) {
	if len(id.Set) > 0 {
		t.write(id.Set, traitVersion(r))
	}
	if len(id.SetOnce) > 0 {
		t.write(id.SetOnce, onceVersion(r))
	}
}

func (t *userTraits) write(raw json.RawMessage, version string) {
	var add map[string]json.RawMessage
	if err := json.Unmarshal(raw, &add); err != nil {
		return
	}
	if t.values == nil {
		t.values, t.versions = map[string]json.RawMessage{}, map[string]string{}
	}
	for name, value := range add {
		if version > t.versions[name] {
			t.values[name], t.versions[name] = value, version
		}
	}
}

// traitVersion orders trait writes: last writer wins by event time, then
// id, whatever order (or how many times) identify events arrive. The time
// is never later than the event's arrival: a client clock (or a client)
// claiming the future cannot pin a trait against later writes.
func traitVersion(r *readmodel.Event) string {
	return versionTime(r).UTC().Format("2006-01-02T15:04:05.000000000Z") + "|" + r.ID
}

// onceVersion orders set-once writes below every set ("!" sorts before
// any digit) and among themselves earliest first: the time is counted
// down from the largest nanosecond.
func onceVersion(r *readmodel.Event) string {
	return fmt.Sprintf("!%019d|%s", math.MaxInt64-versionTime(r).UnixNano(), r.ID)
}

func versionTime(r *readmodel.Event) time.Time {
	at := r.OccurredAt
	if r.ReceivedAt.Before(at) {
		at = r.ReceivedAt
	}
	return at
}

// merge folds in a stored user's traits: each one stays unless a write
// with a later version was folded, as if the stored traits had been
// folded first.
func (t *userTraits) merge(u *readmodel.EndUser) {
	var values map[string]json.RawMessage
	var versions map[string]string
	_ = json.Unmarshal(u.Traits, &values)
	_ = json.Unmarshal(u.TraitVersions, &versions)
	if t.values == nil {
		t.values, t.versions = map[string]json.RawMessage{}, map[string]string{}
	}
	for name, value := range values {
		stored, versioned := versions[name]
		if v, written := t.versions[name]; !written || stored >= v {
			t.values[name] = value
			if versioned {
				t.versions[name] = stored
			} else {
				delete(t.versions, name)
			}
		}
	}
}

// encode sets u's traits and versions, keys sorted: deterministic bytes.
func (t *userTraits) encode(u *readmodel.EndUser) error {
	values, versions := t.values, t.versions
	if values == nil {
		values, versions = map[string]json.RawMessage{}, map[string]string{}
	}
	var err error
	if u.Traits, err = json.Marshal(values); err != nil {
		return fmt.Errorf("encoding traits of %s: %w", u.ExternalID, err)
	}
	if u.TraitVersions, err = json.Marshal(versions); err != nil {
		return fmt.Errorf("encoding trait versions of %s: %w", u.ExternalID, err)
	}
	return nil
}
