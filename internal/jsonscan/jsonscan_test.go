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
