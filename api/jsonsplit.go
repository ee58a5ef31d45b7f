package api

import (
	"encoding/json"
	"reflect"
)

// The edge reads a batch in one validating pass and then splits it.
// encoding/json read each item six times over: validating and decoding the
// body into a map, the batch into a slice, each item into a map, each
// time validating what the pass before had validated. Splitting valid JSON
// needs only its strings and brackets; what is not valid JSON, or not the
// shape asked for, goes to encoding/json, so its answers and errors stay
// encoding/json's.

// exactFields decodes a JSON object, keeping the raw value of each field
// whose name is exactly one of fields (the last one when repeated).
func exactFields(b []byte, fields map[string]*json.RawMessage) error {
	if json.Valid(b) && splitObject(b, fields) {
		return nil
	}
	return fieldsByDecoding(b, fields)
}

// exactFieldsOfValid is exactFields for b known to be valid JSON: an item
// of a body exactFields read.
func exactFieldsOfValid(b []byte, fields map[string]*json.RawMessage) error {
	if splitObject(b, fields) {
		return nil
	}
	return fieldsByDecoding(b, fields)
}

// fieldsByDecoding is exactFields by encoding/json, for what splitObject does
// not take: invalid JSON, or a value that is no object.
func fieldsByDecoding(b []byte, fields map[string]*json.RawMessage) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		return &json.UnmarshalTypeError{Value: "null", Type: reflect.TypeFor[map[string]json.RawMessage]()}
	}
	for k, v := range m {
		if p, ok := fields[k]; ok {
			*p = v
		}
	}
	return nil
}

// splitObject sets the fields of the valid JSON object b, as fieldsByDecoding
// would, and reports false, having set none, when b is not an object.
func splitObject(b []byte, fields map[string]*json.RawMessage) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	type found struct {
		p   *json.RawMessage
		raw json.RawMessage
	}
	var set [8]found
	sets := set[:0]
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) && b[i] == '"' {
		ks, end := i, skipString(b, i)
		if end > len(b) {
			return false
		}
		key := b[ks+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		start := i
		if i = skipValue(b, i); i > len(b) || i == start {
			return false
		}
		var p *json.RawMessage
		if hasEscape(key) {
			var name string
			if json.Unmarshal(b[ks:end], &name) == nil {
				p = fields[name]
			}
		} else {
			p = fields[string(key)]
		}
		if p != nil {
			sets = append(sets, found{p, b[start:i:i]})
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			for _, s := range sets {
				*s.p = s.raw
			}
			return true
		}
		return false
	}
	return false
}

// splitArray returns the items of the valid JSON array b, as
// json.Unmarshal into a []json.RawMessage would, or false when b is not an
// array.
func splitArray(b []byte) ([]json.RawMessage, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	items := []json.RawMessage{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return items, true
	}
	for i < len(b) {
		start := i
		if i = skipValue(b, i); i > len(b) || i == start {
			return nil, false
		}
		items = append(items, b[start:i:i])
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return items, true
		}
		return nil, false
	}
	return nil, false
}

// skipValue returns the index just past the value of valid JSON that
// starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b) + 1 // unbalanced: not valid JSON
	default: // a number, true, false or null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the index just past the string that starts at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b) + 1 // unterminated: not valid JSON
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func hasEscape(key []byte) bool {
	for _, c := range key {
		if c == '\\' {
			return true
		}
	}
	return false
}
