package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// splitFields are the names the split test asks for: ones the dialects
// read, one spelled with an escape, and a repeated one.
var splitFields = []string{"event", "properties", "batch", "userId", "é", "a"}

// splitCases are inputs that differ from encoding/json in a way a careless
// splitter would miss; they seed the fuzz targets too.
var splitCases = []string{
	`{"event":"a","properties":{"x":[1,{"y":"}"}]}}`,
	` { "event" : "a" , "event" : "b" } `,
	`{"\u0065vent":"escaped key","event":"plain"}`,
	`{"event":"plain","\u0065vent":"escaped key last"}`,
	`{"\u00e9":1,"é":2}`,
	`{"a":"\"}","batch":[{"a":1},"]",[],{}]}`,
	`{"a":null,"userId":true,"event":-1.5e+3}`,
	`{}`, `[]`, `null`, `"s"`, `1`, `{"a":1}x`, `{"a":}`, `{"a" 1}`, `{"a":1,}`, `[1,]`,
	`{"a":"\xff"}`, "{\"\xff\":1}", `{"a":[1,2,3]`, `{"a":"unterminated}`, ``, ` `,
	`[1, "two", {"three": [3]}, null, true]`, `[ ]`, `[[],[[]]]`,
}

// referenceFields is exactFields as encoding/json reads it.
func referenceFields(b []byte) (map[string]json.RawMessage, error) {
	return splitFieldsOf(b, fieldsByDecoding)
}

func splitFieldsOf(b []byte, read func([]byte, map[string]*json.RawMessage) error) (map[string]json.RawMessage, error) {
	got := map[string]json.RawMessage{}
	fields := map[string]*json.RawMessage{}
	for _, f := range splitFields {
		fields[f] = new(json.RawMessage)
	}
	err := read(b, fields)
	for f, p := range fields {
		if *p != nil {
			got[f] = *p
		}
	}
	return got, err
}

func checkFields(t *testing.T, b []byte) {
	t.Helper()
	want, werr := referenceFields(b)
	got, gerr := splitFieldsOf(b, exactFields)
	if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) || !reflect.DeepEqual(got, want) {
		t.Fatalf("exactFields(%q) = %q, %v; encoding/json reads %q, %v", b, got, gerr, want, werr)
	}
	if werr == nil { // valid: what exactFieldsOfValid is given
		got, gerr = splitFieldsOf(b, exactFieldsOfValid)
		if gerr != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("exactFieldsOfValid(%q) = %q, %v; encoding/json reads %q", b, got, gerr, want)
		}
	}
}

func checkArray(t *testing.T, b []byte) {
	t.Helper()
	var want []json.RawMessage
	werr := json.Unmarshal(b, &want)
	if werr != nil || want == nil {
		return // splitArray is only given arrays of a valid body
	}
	got, ok := splitArray(b)
	if !ok || len(got) != len(want) {
		t.Fatalf("splitArray(%q) = %q, %v; encoding/json reads %q", b, got, ok, want)
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("splitArray(%q)[%d] = %q, want %q", b, i, got[i], want[i])
		}
	}
}

func TestSplitReadsAsEncodingJSON(t *testing.T) {
	for _, c := range splitCases {
		checkFields(t, []byte(c))
		checkArray(t, []byte(c))
	}
}

func FuzzExactFields(f *testing.F) {
	for _, c := range splitCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFields(t, b)
		checkArray(t, b)
	})
}
