package projections

import (
	"reflect"
	"testing"
	"time"
)

// TestDaySpansChainInAnyOrder folds times in the order they arrive and
// checks each day's span and neighbour against what the times say.
func TestDaySpansChainInAnyOrder(t *testing.T) {
	at := func(day int, h int) int64 {
		return time.Date(2026, 11, day, h, 0, 0, 0, time.UTC).UnixMicro()
	}
	d := func(day int) int64 { return dayNumber(time.Date(2026, 11, day, 0, 0, 0, 0, time.UTC)) }
	for _, tc := range []struct {
		name  string
		times []int64
		want  []daySpan
	}{
		{"one day, latest first", []int64{at(3, 18), at(3, 9), at(3, 12)},
			[]daySpan{{day: d(3), first: at(3, 9), last: at(3, 18)}}},
		{"days in order", []int64{at(1, 10), at(2, 11), at(4, 12)},
			[]daySpan{{day: d(1), first: at(1, 10), last: at(1, 10)},
				{day: d(2), first: at(2, 11), last: at(2, 11), prev: at(1, 10), hasPrev: true},
				{day: d(4), first: at(4, 12), last: at(4, 12), prev: at(2, 11), hasPrev: true}}},
		{"a day arrives between two others", []int64{at(4, 12), at(1, 10), at(2, 23), at(2, 1), at(1, 20)},
			[]daySpan{{day: d(1), first: at(1, 10), last: at(1, 20)},
				{day: d(2), first: at(2, 1), last: at(2, 23), prev: at(1, 20), hasPrev: true},
				{day: d(4), first: at(4, 12), last: at(4, 12), prev: at(2, 23), hasPrev: true}}},
		{"midnight starts a day", []int64{at(2, 0), at(2, 0) - 1},
			[]daySpan{{day: d(1), first: at(2, 0) - 1, last: at(2, 0) - 1},
				{day: d(2), first: at(2, 0), last: at(2, 0), prev: at(2, 0) - 1, hasPrev: true}}},
		{"before 1970", []int64{-1, 0},
			[]daySpan{{day: -1, first: -1, last: -1}, {day: 0, first: 0, last: 0, prev: -1, hasPrev: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var days []daySpan
			for _, us := range tc.times {
				days = addTime(days, us)
			}
			chainFrom(days, 0)
			if !reflect.DeepEqual(days, tc.want) {
				t.Errorf("got  %+v\nwant %+v", days, tc.want)
			}
		})
	}
}

// TestWeekAndMonthOfDayAgreeWithApply checks the bulk build's day
// arithmetic against the periods Apply stores, over every day of a span
// around the epoch (negative days included) and of recent years.
func TestWeekAndMonthOfDayAgreeWithApply(t *testing.T) {
	for _, span := range []struct{ from, to int64 }{{-800, 800}, {19_700, 21_500}} {
		for day := span.from; day <= span.to; day++ {
			at := dayTime(day).Add(13 * time.Hour)
			if got, want := dayTime(weekOf(day)), UTCWeek(at); !got.Equal(want) {
				t.Fatalf("week of %s: %s, Apply stores %s", at, got, want)
			}
			if got, want := dayTime(monthOf(day)), UTCMonth(at); !got.Equal(want) {
				t.Fatalf("month of %s: %s, Apply stores %s", at, got, want)
			}
		}
	}
}
