package jsonscan

import (
	"slices"
	"testing"
	"time"
)

func TestFieldNames(t *testing.T) {
	type header struct {
		ID string `json:"id"`
		At time.Time
	}
	type doc struct {
		header
		Name    string `json:"name,omitempty"`
		Skipped string `json:"-"`
		hidden  string
		Raw     []byte `json:",omitempty"`
	}
	_ = doc{}.hidden
	want := []string{"id", "At", "name", "Raw"}
	if got := FieldNames[doc](); !slices.Equal(got, want) {
		t.Errorf("FieldNames = %q, want %q", got, want)
	}
}

func TestIntTakesWhatEncodingJSONTakesIntoAnInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want int
	}{
		{"1", true, 1}, {"-0", true, 0}, {"-12", true, -12}, {"null", true, 7},
		{"01", false, 7}, {"1.0", false, 7}, {"1e3", false, 7}, {"-", false, 7}, {`"1"`, false, 7},
		{"99999999999999999999", false, 7},
	} {
		n := 7
		if ok := New([]byte(tc.in)).Int(&n); ok != tc.ok || n != tc.want {
			t.Errorf("Int(%s) = %d, %v; want %d, %v", tc.in, n, ok, tc.want, tc.ok)
		}
	}
}
