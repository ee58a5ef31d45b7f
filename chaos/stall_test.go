package chaos

import (
	"testing"
	"time"
)

func TestLongestStall(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	tests := []struct {
		name    string
		samples []sample
		want    time.Duration
	}{
		{"no samples", nil, 0},
		{"keeps up", []sample{{ms(0), 0, 0}, {ms(250), 10, 10}, {ms(500), 20, 20}}, 0},
		{"growing while behind is no stall", []sample{{ms(0), 0, 5}, {ms(250), 4, 9}, {ms(500), 8, 12}}, ms(250)},
		{"flat while events wait, until growth", []sample{{ms(0), 10, 10}, {ms(250), 10, 20}, {ms(500), 10, 30},
			{ms(750), 10, 40}, {ms(1000), 35, 40}}, ms(750)},
		{"flat with nothing waiting is idle, not a stall", []sample{{ms(0), 10, 10}, {ms(250), 10, 10}, {ms(500), 10, 10}}, 0},
		{"ends when the waiting events are gone without growth", []sample{{ms(0), 10, 12}, {ms(250), 10, 12},
			{ms(500), 10, 10}}, ms(500)},
		{"still stalled at the end", []sample{{ms(0), 5, 5}, {ms(250), 6, 9}, {ms(500), 6, 9}, {ms(750), 6, 9}}, ms(500)},
		{"the longest of two", []sample{{ms(0), 0, 5}, {ms(250), 0, 5}, {ms(500), 5, 9}, {ms(750), 5, 9},
			{ms(1000), 5, 9}, {ms(1250), 5, 9}, {ms(1500), 9, 9}}, ms(1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := longestStall(tt.samples); got != tt.want {
				t.Errorf("longestStall = %s, want %s", got, tt.want)
			}
		})
	}
}
