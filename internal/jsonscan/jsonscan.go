// Package jsonscan is a one-pass JSON reader for decoders written by hand
// on hot paths (the projector's records, the handlers' commands), where
// encoding/json validates a document before decoding it, by reflection.
// Each such decoder declines what it does not expect and falls back to
// encoding/json; a fuzz target beside each ties the two.
package jsonscan

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Scanner reads JSON in one pass, for decoders written by hand: each
// method reports false on anything it does not expect, and the caller then
// decodes with encoding/json, whose result is the reference. Values it
// hands out alias the input.
type Scanner struct {
	b []byte
	i int
}

// New scans b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

// End reports whether only white space is left.
func (d *Scanner) End() bool {
	d.Space()
	return d.i == len(d.b)
}

// Space moves past white space.
func (d *Scanner) Space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// Object calls field for each key, positioned at its value, which field
// must consume.
func (d *Scanner) Object(field func(key []byte) bool) bool {
	return d.list('{', '}', func() bool {
		key, ok := d.PlainBytes()
		if !ok {
			return false
		}
		d.Space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return false
		}
		d.i++
		d.Space()
		return field(key)
	})
}

// Array calls elem for each element, positioned at it, which elem must
// consume.
func (d *Scanner) Array(elem func() bool) bool { return d.list('[', ']', elem) }

// list reads opening, items separated by commas, and closing.
func (d *Scanner) list(opening, closing byte, item func() bool) bool {
	d.Space()
	if d.i >= len(d.b) || d.b[d.i] != opening {
		return false
	}
	d.i++
	d.Space()
	if d.i < len(d.b) && d.b[d.i] == closing {
		d.i++
		return true
	}
	for {
		d.Space()
		if !item() {
			return false
		}
		d.Space()
		if d.i >= len(d.b) {
			return false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case closing:
			d.i++
			return true
		default:
			return false
		}
	}
}

// Other skips the value of a key none of known names exactly; a key that
// matches one but for case is left to encoding/json (which matches keys
// without regard to case). The value must be JSON, as Raw's must: Skip
// only finds where it ends, and what encoding/json refuses must not be
// taken here (the live runner quarantines such a record, so the replay
// must not fold it).
func (d *Scanner) Other(key []byte, known []string) bool {
	for _, k := range known {
		if strings.EqualFold(k, string(key)) {
			return false
		}
	}
	start := d.i
	end, ok := d.Skip()
	return ok && json.Valid(d.b[start:end])
}

// PlainString reads a string without escapes.
func (d *Scanner) PlainString(s *string) bool {
	b, ok := d.PlainBytes()
	if ok {
		*s = string(b)
	}
	return ok
}

// PlainBytes reads a string without escapes, aliasing d.b.
func (d *Scanner) PlainBytes() ([]byte, bool) {
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

// Str reads a string (escapes decoded by encoding/json) or null (which
// leaves s as it is, as encoding/json does).
func (d *Scanner) Str(s *string) bool {
	if d.Null() {
		return true
	}
	start := d.i
	if d.PlainString(s) {
		return true
	}
	d.i = start
	end, ok := d.Skip()
	if !ok || d.b[start] != '"' {
		return false
	}
	return json.Unmarshal(d.b[start:end], s) == nil
}

// Int reads an integer as encoding/json reads one into an int (digits,
// an optional minus, no leading zero, in range), or null (which leaves n
// as it is); a fraction or exponent is declined.
func (d *Scanner) Int(n *int) bool {
	if d.Null() {
		return true
	}
	start := d.i
	end, ok := d.Skip()
	if !ok {
		return false
	}
	s := d.b[start:end]
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || (digits[0] == '0' && len(digits) > 1) {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	x, err := strconv.Atoi(string(s))
	if err != nil {
		return false
	}
	*n = x
	return true
}

// Null moves past a null, if that is what comes.
func (d *Scanner) Null() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// Time reads an RFC 3339 time without escapes, or null (which leaves t
// as it is, as encoding/json does).
func (d *Scanner) Time(t *time.Time) bool {
	if d.Null() {
		return true
	}
	var s string
	if !d.PlainString(&s) {
		return false
	}
	p, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return false
	}
	*t = p
	return true
}

// OptTime reads a time into a new value, or null into nil.
func (d *Scanner) OptTime(t **time.Time) bool {
	if d.Null() {
		*t = nil
		return true
	}
	var p time.Time
	if !d.Time(&p) {
		return false
	}
	*t = &p
	return true
}

// Raw takes a value as it is (null included, as json.RawMessage does).
func (d *Scanner) Raw(r *json.RawMessage) bool {
	start := d.i
	end, ok := d.Skip()
	if !ok || !json.Valid(d.b[start:end]) {
		return false
	}
	*r = d.b[start:end:end]
	return true
}

// Skip moves past one value, returning where it ends.
func (d *Scanner) Skip() (int, bool) {
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
				if _, ok := d.Skip(); !ok {
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

// FieldNames are the JSON names encoding/json gives T's fields, embedded
// structs' included: a hand-written decoder of T leaves to encoding/json
// a key that matches one of them but for case (Other), and takes the list
// from the type, so a field added to it cannot be missed.
func FieldNames[T any]() []string { return fieldNames(reflect.TypeFor[T]()) }

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || (!f.IsExported() && !f.Anonymous):
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			names = append(names, fieldNames(f.Type)...)
		case name == "":
			names = append(names, f.Name)
		default:
			names = append(names, name)
		}
	}
	return names
}
