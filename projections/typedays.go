package projections

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/readmodel"
)

// daily_event_users keeps, per user, event type and UTC day, the first and
// last time of the day and the last time of the user's previous day with
// the type (its neighbour). The neighbour is what makes a distinct count
// over a range a plain count of rows (queries.TopEvents), and why events
// arriving out of order may change a row other than their own: the next
// day's prev_last_at.

// typeDaysKey names one user's days with one event type.
type typeDaysKey struct{ project, typ, id string }

// daySpan is a user's first and last time (µs since the epoch) with an
// event type on one UTC day, and the last time of the day before it in the
// chain (hasPrev false on the first day).
type daySpan struct {
	day         int64 // days since the epoch
	first, last int64
	prev        int64
	hasPrev     bool
}

const microsPerDay = int64(24 * time.Hour / time.Microsecond)

// dayOf is the UTC day of a time in µs since the epoch.
func dayOf(us int64) int64 {
	d := us / microsPerDay
	if us%microsPerDay < 0 {
		d--
	}
	return d
}

func dayTime(day int64) time.Time { return time.UnixMicro(day * microsPerDay).UTC() }

func dayNumber(t time.Time) int64 { return dayOf(t.UnixMicro()) }

// addTime folds one event time into days sorted by day.
func addTime(days []daySpan, us int64) []daySpan {
	d := dayOf(us)
	i, found := slices.BinarySearchFunc(days, d, func(s daySpan, d int64) int { return cmp.Compare(s.day, d) })
	if !found {
		return slices.Insert(days, i, daySpan{day: d, first: us, last: us})
	}
	days[i].first, days[i].last = min(days[i].first, us), max(days[i].last, us)
	return days
}

// chain sets each day's neighbour from the day before it.
func chain(days []daySpan) {
	for i := range days {
		days[i].hasPrev = i > 0
		days[i].prev = 0
		if i > 0 {
			days[i].prev = days[i-1].last
		}
	}
}

func (s daySpan) row(k typeDaysKey) readmodel.DailyEventUser {
	r := readmodel.DailyEventUser{ProjectID: k.project, EventType: k.typ, DistinctID: k.id, Day: dayTime(s.day),
		FirstAt: s.first, LastAt: s.last}
	if s.hasPrev {
		prev := s.prev
		r.PrevLastAt = &prev
	}
	return r
}

// distinctIDOf is the id distinct users are counted by: the user id, else
// the anonymous id.
func distinctIDOf(r *readmodel.Event) *string {
	if r.UserID != nil {
		return r.UserID
	}
	return r.AnonymousID
}

// applyTypeDays folds fresh events into daily_event_users: their days'
// times, and the neighbours of the days they add or widen, read with the
// user's other days of the type.
func (p *Events) applyTypeDays(ctx context.Context, tx bun.Tx, fresh []*trackedRow) error {
	added := map[typeDaysKey][]daySpan{}
	byProject := map[string][]typeDaysKey{}
	for _, r := range fresh {
		id := distinctIDOf(&r.row)
		if id == nil {
			continue
		}
		k := typeDaysKey{r.row.ProjectID, r.row.Type, *id}
		if _, ok := added[k]; !ok {
			byProject[k.project] = append(byProject[k.project], k)
		}
		added[k] = addTime(added[k], r.row.OccurredAt.UnixMicro())
	}
	if len(added) == 0 {
		return nil
	}
	stored := map[typeDaysKey][]daySpan{}
	for project, keys := range byProject {
		for chunk := range slices.Chunk(keys, insertChunk) {
			var rows []readmodel.DailyEventUser
			pairs := make([]string, len(chunk))
			args := make([]any, 0, 2*len(chunk)+1)
			for i, k := range chunk {
				pairs[i] = "(?, ?)"
				args = append(args, k.typ, k.id)
			}
			// The keys drive a lookup each: a row-value IN, or a join
			// SQLite may reorder, reads all of the project's rows instead
			// (SQLite keeps the order of a CROSS JOIN).
			args = append(args, project)
			if err := tx.NewRaw("SELECT d.project_id, d.event_type, d.distinct_id, d.day, d.first_at, d.last_at, d.prev_last_at "+
				"FROM (VALUES "+strings.Join(pairs, ", ")+") AS v CROSS JOIN daily_event_users AS d "+
				"WHERE d.project_id = ? AND d.event_type = v.column1 AND d.distinct_id = v.column2 "+
				"ORDER BY d.event_type, d.distinct_id, d.day", args...).Scan(ctx, &rows); err != nil {
				return fmt.Errorf("reading daily event users: %w", err)
			}
			for _, r := range rows {
				k := typeDaysKey{project, r.EventType, r.DistinctID}
				s := daySpan{day: dayNumber(r.Day), first: r.FirstAt, last: r.LastAt}
				if r.PrevLastAt != nil {
					s.prev, s.hasPrev = *r.PrevLastAt, true
				}
				stored[k] = append(stored[k], s)
			}
		}
	}
	var changed []readmodel.DailyEventUser
	for _, keys := range byProject {
		for _, k := range keys {
			before := stored[k]
			days := slices.Clone(before)
			for _, s := range added[k] {
				days = addTime(days, s.first)
				days = addTime(days, s.last)
			}
			chain(days)
			j := 0
			for _, s := range days {
				for j < len(before) && before[j].day < s.day {
					j++
				}
				if j < len(before) && before[j] == s {
					continue
				}
				changed = append(changed, s.row(k))
			}
		}
	}
	for chunk := range slices.Chunk(changed, insertChunk) {
		if _, err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, event_type, distinct_id, day) DO UPDATE").
			Set("first_at = EXCLUDED.first_at").Set("last_at = EXCLUDED.last_at").Set("prev_last_at = EXCLUDED.prev_last_at").
			Exec(ctx); err != nil {
			return fmt.Errorf("upserting daily event users: %w", err)
		}
	}
	return nil
}

// typeDaysFold folds a bulk build's events into daily_event_users rows in
// memory: each user's days with a type, in day order.
type typeDaysFold map[typeDaysKey][]daySpan

func (f typeDaysFold) add(r *readmodel.Event) {
	id := distinctIDOf(r)
	if id == nil {
		return
	}
	k := typeDaysKey{r.ProjectID, r.Type, *id}
	f[k] = addTime(f[k], r.OccurredAt.UnixMicro())
}

// size is how many rows the fold holds.
func (f typeDaysFold) size() int {
	n := 0
	for _, days := range f {
		n += len(days)
	}
	return n
}

// rows returns the folded rows, chained; in key order if sorted (the
// order SQLite appends to its B-tree in; PostgreSQL sorts as it builds the
// key's index anyway).
func (f typeDaysFold) rows(sorted bool) []readmodel.DailyEventUser {
	keys := make([]typeDaysKey, 0, len(f))
	n := 0
	for k, days := range f {
		keys = append(keys, k)
		n += len(days)
	}
	if sorted {
		slices.SortFunc(keys, func(a, b typeDaysKey) int {
			return cmp.Or(strings.Compare(a.project, b.project), strings.Compare(a.typ, b.typ), strings.Compare(a.id, b.id))
		})
	}
	rows := make([]readmodel.DailyEventUser, 0, n)
	for _, k := range keys {
		days := f[k]
		chain(days)
		for _, s := range days {
			rows = append(rows, s.row(k))
		}
	}
	return rows
}
