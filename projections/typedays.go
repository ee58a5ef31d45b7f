package projections

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// daily_event_users keeps, per user, event type and UTC day, the first and
// last time of the day and the last time of the user's previous day with
// the type (its neighbour). The neighbour is what makes a distinct count
// over a range a plain count of rows (queries.TopEvents), and why events
// arriving out of order may change a row other than their own: the next
// day's prev_last_at.

// typeDaysKey names one user's days with one event type.
type typeDaysKey struct{ project, typ, id string }

func compareTypeDaysKeys(a, b typeDaysKey) int {
	return cmp.Or(strings.Compare(a.project, b.project), strings.Compare(a.typ, b.typ), strings.Compare(a.id, b.id))
}

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

// chainFrom sets the neighbour of each day from the i-th on from the day
// before it (the first day has none).
func chainFrom(days []daySpan, i int) {
	for ; i < len(days); i++ {
		days[i] = linked(days, i)
	}
}

// linked is days[i] with its neighbour set from the day before it.
func linked(days []daySpan, i int) daySpan {
	s := days[i]
	s.hasPrev, s.prev = i > 0, 0
	if i > 0 {
		s.prev = days[i-1].last
	}
	return s
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

// applyTypeDays merges a batch's days (rollupFold) into daily_event_users:
// their days' times, and the neighbours of the days they add or widen. It
// reads, for each (type, user) of the batch, the days from the one before
// the batch's earliest onwards: in-order traffic reads a row or two,
// however long the user's history.
func (p *Events) applyTypeDays(ctx context.Context, tx bun.Tx, days typeDaysFold) error {
	batch := typeDaysBatch{added: days, byProject: map[string][]typeDaysKey{}}
	for _, k := range slices.SortedFunc(maps.Keys(days), compareTypeDaysKeys) {
		batch.byProject[k.project] = append(batch.byProject[k.project], k)
	}
	if len(batch.added) == 0 {
		return nil
	}
	stored, err := batch.readStored(ctx, tx)
	if err != nil {
		return err
	}
	updated, added := batch.changed(stored)
	if tx.Dialect().Name() == dialect.SQLite {
		return writeTypeDaysSQLite(ctx, tx, updated, added)
	}
	for chunk := range slices.Chunk(slices.Concat(updated, added), insertChunk) {
		if _, err := tx.NewInsert().Model(&chunk).On("CONFLICT (project_id, event_type, distinct_id, day) DO UPDATE").
			Set("first_at = EXCLUDED.first_at").Set("last_at = EXCLUDED.last_at").Set("prev_last_at = EXCLUDED.prev_last_at").
			Exec(ctx); err != nil {
			return fmt.Errorf("upserting daily event users: %w", err)
		}
	}
	return nil
}

// writeTypeDaysSQLite overwrites the stored rows that changed and inserts
// the new ones, without an upsert's statement journal (store.UpdateRows).
func writeTypeDaysSQLite(ctx context.Context, tx bun.Tx, updated, added []readmodel.DailyEventUser) error {
	known := make([][]any, len(updated))
	for i, r := range updated {
		known[i] = []any{r.ProjectID, r.EventType, r.DistinctID, r.Day, r.FirstAt, r.LastAt, r.PrevLastAt}
	}
	for chunk := range slices.Chunk(known, insertChunk) {
		if err := store.UpdateRows(ctx, tx, "daily_event_users", []string{"project_id", "event_type", "distinct_id", "day"},
			[]string{"first_at", "last_at", "prev_last_at"}, chunk); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(added, insertChunk) {
		if err := store.Insert(ctx, tx.NewInsert().Model(&chunk)); err != nil {
			return fmt.Errorf("inserting daily event users: %w", err)
		}
	}
	return nil
}

// typeDaysBatch is a batch's days per (type, user), and its keys per
// project in key order.
type typeDaysBatch struct {
	added     typeDaysFold
	byProject map[string][]typeDaysKey
}

// readStored reads each key's stored days from the one before the batch's
// earliest onwards.
func (b *typeDaysBatch) readStored(ctx context.Context, tx bun.Tx) (map[typeDaysKey][]daySpan, error) {
	// A VALUES list types its columns by their values; PostgreSQL must be
	// told the day is a date, SQLite compares it as the text it stores.
	row := "(?, ?, ?)"
	if tx.Dialect().Name() == dialect.PG {
		row = "(?, ?, CAST(? AS date))"
	}
	stored := map[typeDaysKey][]daySpan{}
	for project, keys := range b.byProject {
		for chunk := range slices.Chunk(keys, insertChunk) {
			var rows []readmodel.DailyEventUser
			values := make([]string, len(chunk))
			args := make([]any, 0, 3*len(chunk)+2)
			for i, k := range chunk {
				values[i] = row
				args = append(args, k.typ, k.id, dayTime(b.added[k][0].day))
			}
			// The keys drive a lookup each (SQLite keeps the order of a
			// CROSS JOIN; as a plain join or a row-value IN it may read all
			// of the project's rows instead).
			args = append(args, project, project)
			if err := tx.NewRaw("SELECT d.project_id, d.event_type, d.distinct_id, d.day, d.first_at, d.last_at, d.prev_last_at "+
				"FROM (VALUES "+strings.Join(values, ", ")+") AS v CROSS JOIN daily_event_users AS d "+
				"WHERE d.project_id = ? AND d.event_type = v.column1 AND d.distinct_id = v.column2 "+
				"AND d.day >= COALESCE((SELECT max(b.day) FROM daily_event_users AS b WHERE b.project_id = ? "+
				"AND b.event_type = v.column1 AND b.distinct_id = v.column2 AND b.day < v.column3), v.column3) "+
				"ORDER BY d.event_type, d.distinct_id, d.day", args...).Scan(ctx, &rows); err != nil {
				return nil, fmt.Errorf("reading daily event users: %w", err)
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
	return stored, nil
}

// changed merges the batch's days into the stored ones and returns the
// rows that differ from what is stored: those stored (updated) and those
// not (added).
func (b *typeDaysBatch) changed(stored map[typeDaysKey][]daySpan) (updated, added []readmodel.DailyEventUser) {
	for _, keys := range b.byProject {
		for _, k := range keys {
			before := stored[k]
			days := slices.Clone(before)
			for _, s := range b.added[k] {
				days = addTime(days, s.first)
				days = addTime(days, s.last)
			}
			// A day read from before the batch's earliest keeps its own
			// neighbour, which was not read; otherwise the first day is the
			// user's first.
			if len(before) > 0 && before[0].day < b.added[k][0].day {
				chainFrom(days, 1)
			} else {
				chainFrom(days, 0)
			}
			j := 0
			for _, s := range days {
				for j < len(before) && before[j].day < s.day {
					j++
				}
				switch {
				case j < len(before) && before[j] == s:
				case j < len(before) && before[j].day == s.day:
					updated = append(updated, s.row(k))
				default:
					added = append(added, s.row(k))
				}
			}
		}
	}
	return updated, added
}

// typeDaysFold folds events into daily_event_users rows in memory: each
// user's days with a type, in day order (a batch's for Apply, the whole
// log's for a bulk build).
type typeDaysFold map[typeDaysKey][]daySpan

func (f typeDaysFold) add(r *readmodel.Event) {
	id := distinctIDOf(r)
	if id == nil {
		return
	}
	k := typeDaysKey{r.ProjectID, r.Type, *id}
	f[k] = addTime(f[k], r.OccurredAt.UnixMicro())
}

// rows returns the folded rows, chained, in no particular order.
func (f typeDaysFold) rows() []readmodel.DailyEventUser {
	keys := make([]typeDaysKey, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	return f.rowsOf(keys)
}

// rowsInKeyOrder returns the folded rows, chained, in key order.
func (f typeDaysFold) rowsInKeyOrder() []readmodel.DailyEventUser {
	keys := make([]typeDaysKey, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareTypeDaysKeys)
	return f.rowsOf(keys)
}

func (f typeDaysFold) rowsOf(keys []typeDaysKey) []readmodel.DailyEventUser {
	n := 0
	for _, days := range f {
		n += len(days)
	}
	rows := make([]readmodel.DailyEventUser, 0, n)
	for _, k := range keys {
		days := f[k]
		for i := range days {
			// Linked without writing to f: the user sets read it at the
			// same time.
			rows = append(rows, linked(days, i).row(k))
		}
	}
	return rows
}
