package dashboard

import (
	"fmt"
	"strings"
	"testing"
)

func TestTailFilter(t *testing.T) {
	tracked := func(id, event, user string) LiveEvent {
		return LiveEvent{ID: id, Event: event, UserID: user, Status: "pending"}
	}
	outcome := func(id, status string) LiveEvent {
		return LiveEvent{ID: id, Status: status, Outcome: true}
	}
	show := func(evs []LiveEvent) string {
		var parts []string
		for _, e := range evs {
			s := e.ID + ":" + e.Status
			if e.Outcome {
				s += "!"
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " ")
	}
	tests := []struct {
		name    string
		filters eventFilters
		types   map[string]bool
		in      []LiveEvent
		want    []string // what each input sends
	}{
		{
			name: "event then its outcome",
			in:   []LiveEvent{tracked("a", "click", "u1"), outcome("a", "processed")},
			want: []string{"a:pending", "a:processed!"},
		},
		{
			name: "an outcome that overtook its event follows it",
			in:   []LiveEvent{outcome("a", "processed"), tracked("a", "click", "u1")},
			want: []string{"", "a:pending a:processed!"},
		},
		{
			name:    "an early outcome of a filtered-out user stays hidden",
			filters: eventFilters{User: "u1"},
			in:      []LiveEvent{outcome("b", "failed"), tracked("b", "click", "u2"), tracked("a", "click", "u1")},
			want:    []string{"", "", "a:pending"},
		},
		{
			name:  "type filter applies to outcomes",
			types: map[string]bool{"page_view": true},
			in:    []LiveEvent{tracked("a", "click", "u1"), outcome("a", "processed"), tracked("b", " Page_View", "u1"), outcome("b", "processed")},
			want:  []string{"", "", "b:pending", "b:processed!"},
		},
		{
			name:    "status filter shows the whole event when it reaches the status",
			filters: eventFilters{Status: "failed"},
			in:      []LiveEvent{tracked("a", "buy", "u1"), outcome("a", "failed"), tracked("b", "buy", "u1"), outcome("b", "processed")},
			want:    []string{"", "a:failed", "", ""},
		},
		{
			name:    "status filter with an early outcome",
			filters: eventFilters{Status: "failed"},
			in:      []LiveEvent{outcome("a", "failed"), tracked("a", "buy", "u1")},
			want:    []string{"", "a:failed"},
		},
		{
			name: "an outcome of an event never seen is never sent",
			in:   []LiveEvent{outcome("x", "processed"), tracked("a", "click", "u1")},
			want: []string{"", "a:pending"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tail := newTailFilter(tc.filters, tc.types)
			for i, ev := range tc.in {
				if got := show(tail.admit(ev)); got != tc.want[i] {
					t.Errorf("input %d (%s:%s): sent %q, want %q", i, ev.ID, ev.Status, got, tc.want[i])
				}
			}
		})
	}
}

// TestRecentForgetsTheOldest keeps memory bounded on a tail left open.
func TestRecentForgetsTheOldest(t *testing.T) {
	r := newRecent[int]()
	for i := range seenLimit + 10 {
		r.put(fmt.Sprint(i), i)
	}
	if _, ok := r.get("9"); ok {
		t.Error("entry 9 kept beyond the limit")
	}
	if v, ok := r.get("10"); !ok || v != 10 {
		t.Errorf("entry 10: %d %v", v, ok)
	}
	if len(r.m) != seenLimit {
		t.Errorf("%d entries, want %d", len(r.m), seenLimit)
	}
}
