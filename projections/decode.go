package projections

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gamify/boost/domain"
)

// decodeBulkEnvelope decodes the events topic's records without
// reflection: the fields the bulk build reads, in one pass. It reports
// false on anything it does not expect (escaped keys, a key that only
// matches a field case-insensitively, invalid UTF-8, malformed JSON…),
// and the caller then decodes with encoding/json, whose result is the
// reference. Raw values (properties, context) alias v.
func decodeBulkEnvelope(v []byte, env *bulkEnvelope) bool {
	d := jsonScan{b: v}
	ok := d.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.str(&env.ID)
		case "type":
			return d.str(&env.Type)
		case "projectId":
			return d.str(&env.ProjectID)
		case "occurredAt":
			return d.time(&env.OccurredAt)
		case "receivedAt":
			return d.time(&env.ReceivedAt)
		case "data":
			return d.object(func(key []byte) bool { return d.dataField(key, env) })
		}
		return d.other(key, envelopeKeys)
	})
	d.space()
	return ok && d.i == len(d.b)
}

var envelopeKeys = []string{"id", "type", "projectId", "occurredAt", "receivedAt", "data"}

// dataKeys are domain.TrackedData's fields and OutcomeData's eventId
// (TestBulkDecoderKnowsEveryField ties them to the types).
var dataKeys = []string{"event", "userId", "anonymousId", "properties", "context", "messageId", "traits", "traitsOnce",
	"previousId", "integrations", "timestamp", "sentAt", "receivedAt", "keyId", "keyType", "reason", "code", "outcome", "eventId"}

func (d *jsonScan) dataField(key []byte, env *bulkEnvelope) bool {
	t := &env.Data.TrackedData
	switch string(key) {
	case "event":
		return d.str(&t.Event)
	case "userId":
		return d.str(&t.UserID)
	case "anonymousId":
		return d.str(&t.AnonymousID)
	case "properties":
		return d.raw(&t.Properties)
	case "context":
		return d.raw(&t.Context)
	case "messageId":
		return d.str(&t.MessageID)
	case "traits":
		return d.raw(&t.Traits)
	case "traitsOnce":
		return d.raw(&t.TraitsOnce)
	case "previousId":
		return d.str(&t.PreviousID)
	case "integrations":
		return d.raw(&t.Integrations)
	case "timestamp":
		return d.optTime(&t.Timestamp)
	case "sentAt":
		return d.optTime(&t.SentAt)
	case "receivedAt":
		return d.time(&t.ReceivedAt)
	case "keyId":
		return d.str(&t.KeyID)
	case "keyType":
		var s string
		if !d.str(&s) {
			return false
		}
		t.KeyType = domain.KeyType(s)
		return true
	case "reason":
		return d.str(&t.Reason)
	case "code":
		return d.str(&t.Code)
	case "outcome":
		return d.str(&t.Outcome)
	case "eventId":
		return d.str(&env.Data.EventID)
	}
	return d.other(key, dataKeys)
}

type jsonScan struct {
	b []byte
	i int
}

func (d *jsonScan) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// object calls field for each key, positioned at its value, which field
// must consume.
func (d *jsonScan) object(field func(key []byte) bool) bool {
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return false
	}
	d.i++
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return true
	}
	for {
		d.space()
		key, ok := d.plainBytes()
		if !ok {
			return false
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return false
		}
		d.i++
		d.space()
		if !field(key) {
			return false
		}
		d.space()
		if d.i >= len(d.b) {
			return false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return true
		default:
			return false
		}
	}
}

// other skips the value of a key none of known names exactly; a key that
// matches one but for case is left to encoding/json. The value must be
// JSON, as raw's must: skip only finds where it ends, and a record that
// encoding/json refuses is quarantined by the live runner, so the replay
// must not fold it.
func (d *jsonScan) other(key []byte, known []string) bool {
	for _, k := range known {
		if strings.EqualFold(k, string(key)) {
			return false
		}
	}
	start := d.i
	end, ok := d.skip()
	return ok && json.Valid(d.b[start:end])
}

// plainString reads a string without escapes.
func (d *jsonScan) plainString(s *string) bool {
	b, ok := d.plainBytes()
	if ok {
		*s = string(b)
	}
	return ok
}

// plainBytes reads a string without escapes, aliasing d.b.
func (d *jsonScan) plainBytes() ([]byte, bool) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		if c == '"' {
			if !utf8.Valid(d.b[start:j]) {
				return nil, false
			}
			d.i = j + 1
			return d.b[start:j], true
		}
		if c == '\\' || c < 0x20 {
			return nil, false
		}
	}
	return nil, false
}

// str reads a string (escapes decoded by encoding/json) or null (which
// leaves s as it is, as encoding/json does).
func (d *jsonScan) str(s *string) bool {
	if d.null() {
		return true
	}
	start := d.i
	if d.plainString(s) {
		return true
	}
	d.i = start
	end, ok := d.skip()
	if !ok || d.b[start] != '"' {
		return false
	}
	return json.Unmarshal(d.b[start:end], s) == nil
}

func (d *jsonScan) null() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

func (d *jsonScan) time(t *time.Time) bool {
	if d.null() {
		return true
	}
	var s string
	if !d.plainString(&s) {
		return false
	}
	p, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return false
	}
	*t = p
	return true
}

func (d *jsonScan) optTime(t **time.Time) bool {
	if d.null() {
		*t = nil
		return true
	}
	var p time.Time
	if !d.time(&p) {
		return false
	}
	*t = &p
	return true
}

// raw takes a value as it is (null included, as json.RawMessage does).
func (d *jsonScan) raw(r *json.RawMessage) bool {
	start := d.i
	end, ok := d.skip()
	if !ok || !json.Valid(d.b[start:end]) {
		return false
	}
	*r = d.b[start:end:end]
	return true
}

// skip moves past one value, returning where it ends.
func (d *jsonScan) skip() (int, bool) {
	if d.i >= len(d.b) {
		return 0, false
	}
	switch c := d.b[d.i]; {
	case c == '"':
		for j := d.i + 1; j < len(d.b); j++ {
			switch d.b[j] {
			case '\\':
				j++
			case '"':
				if !utf8.Valid(d.b[d.i : j+1]) {
					return 0, false
				}
				d.i = j + 1
				return d.i, true
			}
		}
		return 0, false
	case c == '{' || c == '[':
		depth := 0
		for j := d.i; j < len(d.b); j++ {
			switch d.b[j] {
			case '"':
				d.i = j
				if _, ok := d.skip(); !ok {
					return 0, false
				}
				j = d.i - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					d.i = j + 1
					return d.i, true
				}
			}
		}
		return 0, false
	default:
		j := d.i
		for j < len(d.b) {
			switch d.b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if j == d.i {
					return 0, false
				}
				d.i = j
				return j, true
			}
			j++
		}
		if j == d.i {
			return 0, false
		}
		d.i = j
		return j, true
	}
}

// decodeTracked decodes a tracked event's payload with the decoder the
// bulk build reads the log with, and with encoding/json (the reference)
// where that declines: live apply and replay read a payload alike, in one
// pass, where encoding/json validated it before decoding it.
// FuzzDecodeTracked ties the two.
func decodeTracked(e *domain.Event) (domain.TrackedData, error) {
	var env bulkEnvelope
	d := jsonScan{b: e.Data}
	if d.object(func(key []byte) bool { return d.dataField(key, &env) }) {
		if d.space(); d.i == len(d.b) {
			return env.Data.TrackedData, nil
		}
	}
	return domain.DecodeData[domain.TrackedData](e)
}
