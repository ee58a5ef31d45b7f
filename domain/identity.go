package domain

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
)

// Names the dialects store their calls under when the call has no event
// name of its own (Segment's page, screen, alias and group). PostHog's
// events keep the names they were sent with ($pageview, $create_alias,
// $groupidentify): the client named them.
const (
	// PageEvent is a page view, as Boost's own SDKs name it, so page
	// views from every SDK count together.
	PageEvent   = "page_view"
	ScreenEvent = "screen_view"
	// AliasEvent links PreviousID to UserID.
	AliasEvent = "$create_alias"
	// GroupEvent puts the user in a group; its properties are
	// {"groupId": …, "traits": {…}}.
	GroupEvent = "$group"
)

// Identity is what a stored event says about its user: traits to set
// (the latest write of each trait wins), traits to set only where the
// user has none (the earliest such write wins), and other ids that are
// the same user. The read models fold every event's Identity, live and in
// a replay, by this one rule.
type Identity struct {
	Set, SetOnce json.RawMessage
	Links        []string
}

// Identity returns what d says about its user. An identify's traits are
// its Traits or, when it has none, its properties; an identify links its
// anonymous id; any event links its PreviousID.
func (d *TrackedData) Identity() Identity {
	id := Identity{Set: d.Traits, SetOnce: d.TraitsOnce}
	if IsIdentify(d.Event) {
		if id.Set == nil {
			id.Set = d.Properties
		}
		if d.AnonymousID != "" && d.AnonymousID != d.UserID {
			id.Links = append(id.Links, d.AnonymousID)
		}
	}
	if d.PreviousID != "" && d.PreviousID != d.UserID && d.PreviousID != d.AnonymousID {
		id.Links = append(id.Links, d.PreviousID)
	}
	return id
}

// checkIdentity checks the fields that update the user.
func checkIdentity(d *TrackedData) error {
	if err := CheckID("previousId", d.PreviousID); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"traits", d.Traits}, {"traitsOnce", d.TraitsOnce}, {"integrations", d.Integrations}} {
		if err := CheckObject(f.name, f.raw); err != nil {
			return err
		}
	}
	if d.UserID == "" {
		switch {
		case d.PreviousID != "":
			return &FieldError{"userId", "is required to link previousId to a user"}
		case len(d.Traits) > 0 || len(d.TraitsOnce) > 0:
			return &FieldError{"userId", "is required to set a user's traits"}
		}
	}
	return nil
}

// WholeAmount returns props with a commerce amount that is a whole number
// up to floating-point error (19.99 * 100 = 1999.0000000000002, or
// 1999.0) written as that whole number, so that a client computing cents
// in floating point is stored as it meant; anything else is returned as
// it is, for CheckCommerce to judge. "Up to floating-point error" is
// within a millionth of a unit, or four float64 steps at magnitudes where
// those are coarser.
func WholeAmount(props json.RawMessage) json.RawMessage {
	start, end, ok := topLevelValue(props, "amount")
	if !ok {
		return props
	}
	lit := props[start:end]
	if _, err := strconv.ParseInt(string(lit), 10, 64); err == nil || len(lit) == 0 || (lit[0] != '-' && (lit[0] < '0' || lit[0] > '9')) {
		return props // an integer already, or not a number
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return props
	}
	n := math.Round(f)
	if math.Abs(f-n) > max(1e-6, 4*(math.Nextafter(math.Abs(n), math.Inf(1))-math.Abs(n))) || math.Abs(n) > 1<<53 {
		return props
	}
	out := make([]byte, 0, len(props))
	out = append(out, props[:start]...)
	out = strconv.AppendInt(out, int64(n), 10)
	return append(out, props[end:]...)
}

// topLevelValue finds the value of key in a JSON object: the last one when
// the key is repeated, as encoding/json reads it.
func topLevelValue(obj json.RawMessage, key string) (start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		name, _ := t.(string)
		from := int(dec.InputOffset())
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, 0, false
		}
		if name != key {
			continue
		}
		to := int(dec.InputOffset())
		// The value follows the colon and any white space.
		i := bytes.IndexByte(obj[from:to], ':')
		if i < 0 {
			return 0, 0, false
		}
		from += i + 1
		for from < to && (obj[from] == ' ' || obj[from] == '\t' || obj[from] == '\n' || obj[from] == '\r') {
			from++
		}
		start, end, ok = from, to, true
	}
	return start, end, ok
}
