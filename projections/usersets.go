package projections

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/gamify/boost/readmodel"
)

// userSets are the rows of the distinct-user sets (daily, weekly and
// monthly users), derived from a daily-event-user fold: a user is active
// on a day when it has a day with any event type. Apply inserts a batch's
// (insertUsers); a bulk build writes the whole log's and counts them
// (activeCounts). Each table's rows come in its primary key's order, so
// PostgreSQL's index build finds them sorted and SQLite appends to its
// B-tree.
type userSets struct {
	daily   []readmodel.DailyUser
	weekly  []readmodel.WeeklyUser
	monthly []readmodel.MonthlyUser
}

// userSets folds the days of f by user. It only reads f, as rows does:
// the two run side by side in a bulk build.
func (f typeDaysFold) userSets() userSets {
	days := map[bulkUserKey][]int64{}
	for k, spans := range f {
		u := bulkUserKey{k.project, k.id}
		d := days[u]
		for _, s := range spans {
			d = append(d, s.day)
		}
		days[u] = d
	}
	users := slices.SortedFunc(maps.Keys(days), func(a, b bulkUserKey) int {
		return cmp.Or(strings.Compare(a.project, b.project), strings.Compare(a.id, b.id))
	})

	// Users are taken in order, so each (project, day) lists its users in
	// order; only the days need sorting.
	dayUsers := map[periodKey][]string{}
	var s userSets
	for _, u := range users {
		d := days[u]
		slices.Sort(d)
		d = slices.Compact(d)
		lastWeek, lastMonth := int64(-1<<62), int64(-1<<62)
		for _, day := range d {
			k := periodKey{u.project, day}
			dayUsers[k] = append(dayUsers[k], u.id)
			// Days ascend, so a user's weeks and months do too.
			if w := weekOf(day); w != lastWeek {
				lastWeek = w
				s.weekly = append(s.weekly, readmodel.WeeklyUser{ProjectID: u.project, DistinctID: u.id, Week: dayTime(w)})
			}
			if m := monthOf(day); m != lastMonth {
				lastMonth = m
				s.monthly = append(s.monthly, readmodel.MonthlyUser{ProjectID: u.project, DistinctID: u.id, Month: dayTime(m)})
			}
		}
	}
	dayKeys := slices.SortedFunc(maps.Keys(dayUsers), func(a, b periodKey) int {
		return cmp.Or(strings.Compare(a.project, b.project), cmp.Compare(a.start, b.start))
	})
	s.daily = make([]readmodel.DailyUser, 0, len(s.weekly)*2)
	for _, k := range dayKeys {
		day := dayTime(k.start)
		for _, id := range dayUsers[k] {
			s.daily = append(s.daily, readmodel.DailyUser{ProjectID: k.project, Day: day, DistinctID: id})
		}
	}
	return s
}

// periodKey is one period of one project; start is its first day (days
// since the epoch).
type periodKey struct {
	project string
	start   int64
}

// activeCounts counts the users of each period in s: the active-user
// counts of sets that start empty, as a bulk build's do.
func (s userSets) activeCounts() []readmodel.ActiveUserCount {
	type activeKey struct {
		period string
		periodKey
	}
	counts := map[activeKey]int64{}
	for _, r := range s.daily {
		counts[activeKey{PeriodDay, periodKey{r.ProjectID, dayNumber(r.Day)}}]++
	}
	for _, r := range s.weekly {
		counts[activeKey{PeriodWeek, periodKey{r.ProjectID, dayNumber(r.Week)}}]++
	}
	for _, r := range s.monthly {
		counts[activeKey{PeriodMonth, periodKey{r.ProjectID, dayNumber(r.Month)}}]++
	}
	rows := make([]readmodel.ActiveUserCount, 0, len(counts))
	for k, n := range counts {
		rows = append(rows, readmodel.ActiveUserCount{ProjectID: k.project, Period: k.period, PeriodStart: dayTime(k.start), Users: n})
	}
	slices.SortFunc(rows, func(a, b readmodel.ActiveUserCount) int {
		return cmp.Or(strings.Compare(a.ProjectID, b.ProjectID), strings.Compare(a.Period, b.Period), a.PeriodStart.Compare(b.PeriodStart))
	})
	return rows
}

// weekOf is the Monday starting the UTC week of a day (days since the
// epoch, a Thursday): UTCWeek in day arithmetic, for the million days of
// a replay (TestWeekAndMonthOfDayAgreeWithApply holds them equal).
func weekOf(day int64) int64 {
	return day - ((day%7 + 7 + 3) % 7)
}

// monthOf is the first day of the UTC month of a day.
func monthOf(day int64) int64 { return dayNumber(UTCMonth(dayTime(day))) }
