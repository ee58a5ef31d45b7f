package queries

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
)

// Bucket is the width of one point of a time series.
type Bucket string

// Buckets.
const (
	Minute Bucket = "minute"
	Hour   Bucket = "hour"
	Day    Bucket = "day"
	Week   Bucket = "week" // starting Monday
	Month  Bucket = "month"
)

// MaxBuckets bounds a series so one query cannot ask for millions of points.
const MaxBuckets = 5000

// ErrTooManyBuckets is returned when a range holds more than MaxBuckets.
var ErrTooManyBuckets = errors.New("too many buckets")

// Range is a time series request: [From, To) cut into buckets in Loc.
type Range struct {
	From, To time.Time
	Bucket   Bucket
	Loc      *time.Location
}

func (r Range) trunc(t time.Time) time.Time {
	t = t.In(r.Loc)
	y, m, d := t.Date()
	switch r.Bucket {
	case Minute:
		return time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, r.Loc)
	case Hour:
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, r.Loc)
	case Week:
		return time.Date(y, m, d-(int(t.Weekday())+6)%7, 0, 0, 0, 0, r.Loc)
	case Month:
		return time.Date(y, m, 1, 0, 0, 0, 0, r.Loc)
	default:
		return time.Date(y, m, d, 0, 0, 0, 0, r.Loc)
	}
}

func (r Range) next(t time.Time) time.Time {
	switch r.Bucket {
	case Minute:
		return t.Add(time.Minute)
	case Hour:
		return t.Add(time.Hour)
	case Week:
		return t.AddDate(0, 0, 7)
	case Month:
		return t.AddDate(0, 1, 0)
	default:
		return t.AddDate(0, 0, 1)
	}
}

// Starts returns the bucket starts covering [From, To), the range widened
// to whole buckets, and the end of the last bucket.
func (r Range) Starts() ([]time.Time, time.Time, error) {
	var starts []time.Time
	t := r.trunc(r.From)
	for t.Before(r.To) {
		if len(starts) == MaxBuckets {
			return nil, time.Time{}, ErrTooManyBuckets
		}
		starts = append(starts, t)
		t = r.next(t)
	}
	return starts, t, nil
}

// alignedTo reports whether every bucket boundary is a whole UTC unit, so
// roll-ups kept per UTC hour (or day) add up exactly to the buckets.
func alignedTo(starts []time.Time, end time.Time, unit time.Duration) bool {
	for _, t := range append(slices.Clone(starts), end) {
		if t.UTC().Truncate(unit) != t.UTC() {
			return false
		}
	}
	return true
}

// index returns the bucket t falls in, or -1.
func index(starts []time.Time, end, t time.Time) int {
	if t.Before(starts[0]) || !t.Before(end) {
		return -1
	}
	return sort.Search(len(starts), func(i int) bool { return starts[i].After(t) }) - 1
}

// Series is one named line of counts.
type Series struct {
	Name   string  `json:"name"`
	Counts []int64 `json:"counts"`
	Total  int64   `json:"total"`
}

func seriesFrom(m map[string][]int64) []Series {
	out := make([]Series, 0, len(m))
	for name, counts := range m {
		s := Series{Name: name, Counts: counts}
		for _, c := range counts {
			s.Total += c
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Total != out[j].Total {
			return out[i].Total > out[j].Total
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// EventCounts counts events per type and bucket. UTC day, week and month
// buckets come from the daily roll-up, other whole-hour buckets from the
// hourly one; minute buckets and time zones with fractional
// offsets are counted from the events themselves. Both are exact.
func (q *Queries) EventCounts(ctx context.Context, projectID string, types []string, r Range) ([]time.Time, []Series, error) {
	starts, end, err := r.Starts()
	if err != nil || len(starts) == 0 {
		return starts, nil, err
	}
	byType := map[string][]int64{}
	add := func(typ string, at time.Time, n int64) {
		i := index(starts, end, at)
		if i < 0 {
			return
		}
		if byType[typ] == nil {
			byType[typ] = make([]int64, len(starts))
		}
		byType[typ][i] += n
	}
	for _, t := range types {
		byType[t] = make([]int64, len(starts))
	}
	// A roll-up serves when its periods are the buckets' building blocks:
	// UTC days for day, week and month buckets aligned to UTC midnights,
	// hours for any bucket aligned to whole hours.
	var table, column string
	switch {
	case r.Bucket != Minute && r.Bucket != Hour && alignedTo(starts, end, 24*time.Hour):
		table, column = "event_counts_daily", "day"
	case r.Bucket != Minute && alignedTo(starts, end, time.Hour):
		table, column = "event_counts_hourly", "bucket_start"
	}
	if table != "" {
		var rows []struct {
			EventType string    `bun:"event_type"`
			At        time.Time `bun:"at"`
			Count     int64     `bun:"count"`
		}
		s := q.idb.NewSelect().Table(table).ColumnExpr("event_type, ? AS at, count", bun.Ident(column)).
			Where(q.inProject(), projectID).Where("? >= ?", bun.Ident(column), starts[0].UTC()).
			Where("? < ?", bun.Ident(column), end.UTC())
		if len(types) > 0 {
			s = s.Where("event_type IN (?)", bun.In(types))
		}
		if err := s.Scan(ctx, &rows); err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", table, err)
		}
		for _, row := range rows {
			add(row.EventType, row.At, row.Count)
		}
		return starts, seriesFrom(byType), nil
	}
	var rows []struct {
		Type       string    `bun:"type"`
		OccurredAt time.Time `bun:"occurred_at"`
	}
	s := q.events(projectID, starts[0], end).Column("type", "occurred_at")
	if len(types) > 0 {
		s = s.Where("type IN (?)", bun.In(types))
	}
	if err := s.Scan(ctx, &rows); err != nil {
		return nil, nil, fmt.Errorf("counting events: %w", err)
	}
	for _, row := range rows {
		add(row.Type, row.OccurredAt, 1)
	}
	return starts, seriesFrom(byType), nil
}

// events selects the counted (not rejected) events of a project in
// [from, to).
func (q *Queries) events(projectID string, from, to time.Time) *bun.SelectQuery {
	return q.idb.NewSelect().Table("events").Where(q.inProject(), projectID).Where("NOT rejected").
		Where("occurred_at >= ?", from.UTC()).Where("occurred_at < ?", to.UTC())
}

const distinctExpr = "COALESCE(user_id, anonymous_id)"

// UniqueUsers counts distinct users (user id, else anonymous id) per
// bucket: DAU, WAU, MAU. UTC day, week and month buckets read the counts
// kept with the daily, weekly and monthly active users roll-ups; other
// buckets and time zones count from events.
func (q *Queries) UniqueUsers(ctx context.Context, projectID string, r Range) ([]time.Time, []int64, error) {
	starts, end, err := r.Starts()
	if err != nil || len(starts) == 0 {
		return starts, nil, err
	}
	counts := make([]int64, len(starts))
	if (r.Bucket == Day || r.Bucket == Week || r.Bucket == Month) && alignedTo(starts, end, 24*time.Hour) {
		// Aligned to UTC midnights, a local day, week (from Monday) or
		// month is the UTC one: the roll-up's periods are the buckets.
		var rows []struct {
			Start time.Time `bun:"period_start"`
			Users int64     `bun:"users"`
		}
		if err := q.idb.NewSelect().Table("active_user_counts").Column("period_start", "users").
			Where(q.inProject(), projectID).Where("period = ?", string(r.Bucket)).
			Where("period_start >= ?", starts[0].UTC()).Where("period_start < ?", end.UTC()).
			Scan(ctx, &rows); err != nil {
			return nil, nil, fmt.Errorf("reading active users: %w", err)
		}
		for _, row := range rows {
			if i := index(starts, end, row.Start); i >= 0 {
				counts[i] += row.Users
			}
		}
		return starts, counts, nil
	}
	var rows []activity
	if err := q.events(projectID, starts[0], end).ColumnExpr("occurred_at AS at, "+distinctExpr+" AS distinct_id").
		Scan(ctx, &rows); err != nil {
		return nil, nil, fmt.Errorf("counting users: %w", err)
	}
	return starts, distinctPerBucket(starts, end, rows), nil
}

// activity is one user seen at one time.
type activity struct {
	At         time.Time `bun:"at"`
	DistinctID string    `bun:"distinct_id"`
}

// distinctPerBucket counts the distinct users of each bucket.
func distinctPerBucket(starts []time.Time, end time.Time, rows []activity) []int64 {
	seen := make([]map[string]struct{}, len(starts))
	for _, row := range rows {
		if i := index(starts, end, row.At); i >= 0 {
			if seen[i] == nil {
				seen[i] = map[string]struct{}{}
			}
			seen[i][row.DistinctID] = struct{}{}
		}
	}
	counts := make([]int64, len(starts))
	for i := range seen {
		counts[i] = int64(len(seen[i]))
	}
	return counts
}

// TopEvent is one line of the top-events table.
type TopEvent struct {
	Event string `json:"event" bun:"column:type"`
	Count int64  `json:"count" bun:"count"`
	Users int64  `json:"users" bun:"users"`
}

// TopEvents ranks event types by count over [from, to), with their
// distinct users. Counts of whole UTC days of the range come from the
// daily counts, of whole hours at its edges from the hourly counts, and
// what is left from the events themselves; distinct users are counted in
// daily_event_users. A range without a whole UTC day scans its events.
func (q *Queries) TopEvents(ctx context.Context, projectID string, from, to time.Time, limit int) ([]TopEvent, error) {
	from, to = CeilMicro(from.UTC()), CeilMicro(to.UTC())
	d0, d1 := ceilTo(from, 24*time.Hour), to.Truncate(24*time.Hour)
	if !d0.Before(d1) {
		var rows []TopEvent
		err := q.events(projectID, from, to).ColumnExpr("type, COUNT(*) AS count, COUNT(DISTINCT "+distinctExpr+") AS users").
			GroupExpr("type").OrderExpr("count DESC, type ASC").Limit(int64(limit)).Scan(ctx, &rows)
		if err != nil {
			return nil, fmt.Errorf("ranking events: %w", err)
		}
		return nonNil(rows), nil
	}
	h0, h1 := ceilTo(from, time.Hour), to.Truncate(time.Hour)
	// between selects the counted events of [a, b) and [c, d), leaving out
	// an empty one; nil when both are (a query over no time at all still
	// costs a scan when the planner reads a covering index whole).
	between := func(a, b, c, d time.Time) *bun.SelectQuery {
		if !a.Before(b) && !c.Before(d) {
			return nil
		}
		return q.idb.NewSelect().Table("events").Where(q.inProject(), projectID).Where("NOT rejected").
			WhereGroup(" AND ", func(s *bun.SelectQuery) *bun.SelectQuery {
				if a.Before(b) {
					s = s.WhereOr("occurred_at >= ? AND occurred_at < ?", a, b)
				}
				if c.Before(d) {
					s = s.WhereOr("occurred_at >= ? AND occurred_at < ?", c, d)
				}
				return s
			})
	}
	counted := q.idb.NewSelect().Table("event_counts_daily").ColumnExpr("event_type AS type, count AS n").
		Where(q.inProject(), projectID).Where("day >= ?", d0).Where("day < ?", d1).
		UnionAll(q.idb.NewSelect().Table("event_counts_hourly").ColumnExpr("event_type AS type, count AS n").
			Where(q.inProject(), projectID).WhereGroup(" AND ", func(s *bun.SelectQuery) *bun.SelectQuery {
			return s.Where("bucket_start >= ? AND bucket_start < ?", h0, d0).WhereOr("bucket_start >= ? AND bucket_start < ?", d1, h1)
		}))
	if edges := between(from, h0, h1, to); edges != nil {
		counted = counted.UnionAll(edges.ColumnExpr("type, 1 AS n"))
	}
	var rows []TopEvent
	if err := q.idb.NewSelect().TableExpr("(?) AS c", counted).ColumnExpr("type, SUM(n) AS count").
		GroupExpr("type").OrderExpr("count DESC, type ASC").Limit(int64(limit)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("ranking events: %w", err)
	}
	if len(rows) == 0 {
		return nonNil(rows), nil
	}
	ranked := make([]string, len(rows))
	for i, r := range rows {
		ranked[i] = r.Event
	}
	// Distinct users from daily_event_users alone: a user is counted on
	// their first day with the type in the range, the one row that has an
	// event time in it (on the range's first day its last time is not
	// before from; on its last, its first time is before to; the range
	// spans two days at least) while the previous day's last time does
	// not.
	fromUS, toUS := from.UnixMicro(), to.UnixMicro()
	var users []struct {
		Type  string `bun:"type"`
		Users int64  `bun:"users"`
	}
	if err := q.idb.NewSelect().Table("daily_event_users").ColumnExpr("event_type AS type, COUNT(*) AS users").
		Where(q.inProject(), projectID).Where("event_type IN (?)", bun.In(ranked)).
		Where("day >= ?", from.Truncate(24*time.Hour)).Where("day <= ?", to.Truncate(24*time.Hour)).
		Where("last_at >= ?", fromUS).Where("first_at < ?", toUS).Where("(prev_last_at IS NULL OR prev_last_at < ?)", fromUS).
		GroupExpr("event_type").Scan(ctx, &users); err != nil {
		return nil, fmt.Errorf("counting users per event: %w", err)
	}
	byType := make(map[string]int64, len(users))
	for _, u := range users {
		byType[u.Type] = u.Users
	}
	for i := range rows {
		rows[i].Users = byType[rows[i].Event]
	}
	return rows, nil
}

// nonNil makes an empty answer a JSON [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// CeilMicro rounds t up to a whole microsecond. Stored times are whole
// µs, and for such a time x, x >= t and x < t hold exactly when they hold
// for CeilMicro(t): the bounds of a half-open range [from, to) given finer
// than µs select what they say once rounded, whereas a query truncates
// them to µs. (An inclusive x <= t would need rounding down.)
func CeilMicro(t time.Time) time.Time { return ceilTo(t, time.Microsecond) }

// ceilTo rounds t up to a multiple of d (since the zero time, so UTC days
// and hours for those d).
func ceilTo(t time.Time, d time.Duration) time.Time {
	if c := t.Truncate(d); c.Before(t) {
		return c.Add(d)
	}
	return t
}

// RevenueSeries is one currency's revenue per bucket, in cents.
type RevenueSeries struct {
	Currency    string  `json:"currency"`
	Amounts     []int64 `json:"amounts"`
	Counts      []int64 `json:"counts"`
	TotalAmount int64   `json:"totalAmount"`
	TotalCount  int64   `json:"totalCount"`
}

// Revenue sums purchase, checkout_complete and checkout_success amounts per
// currency and bucket; events that failed processing are not revenue.
func (q *Queries) Revenue(ctx context.Context, projectID string, r Range) ([]time.Time, []RevenueSeries, error) {
	starts, end, err := r.Starts()
	if err != nil || len(starts) == 0 {
		return starts, nil, err
	}
	byCur := map[string]*RevenueSeries{}
	add := func(cur string, at time.Time, amount, count int64) {
		i := index(starts, end, at)
		if i < 0 {
			return
		}
		s := byCur[cur]
		if s == nil {
			s = &RevenueSeries{Currency: cur, Amounts: make([]int64, len(starts)), Counts: make([]int64, len(starts))}
			byCur[cur] = s
		}
		s.Amounts[i] = domain.AddAmounts(s.Amounts[i], amount)
		s.Counts[i] += count
		s.TotalAmount = domain.AddAmounts(s.TotalAmount, amount)
		s.TotalCount += count
	}
	if r.Bucket != Minute && alignedTo(starts, end, time.Hour) {
		var rows []struct {
			Currency    string    `bun:"currency"`
			BucketStart time.Time `bun:"bucket_start"`
			Amount      int64     `bun:"amount"`
			Count       int64     `bun:"count"`
		}
		if err := q.idb.NewSelect().Table("revenue_hourly").Column("currency", "bucket_start", "amount", "count").
			Where(q.inProject(), projectID).Where("bucket_start >= ?", starts[0].UTC()).
			Where("bucket_start < ?", end.UTC()).Scan(ctx, &rows); err != nil {
			return nil, nil, fmt.Errorf("reading revenue: %w", err)
		}
		for _, row := range rows {
			add(row.Currency, row.BucketStart, row.Amount, row.Count)
		}
	} else {
		var rows []struct {
			Currency   string    `bun:"currency"`
			OccurredAt time.Time `bun:"occurred_at"`
			Amount     int64     `bun:"amount"`
		}
		if err := q.events(projectID, starts[0], end).Column("currency", "occurred_at", "amount").
			Where("amount IS NOT NULL").Where("currency IS NOT NULL").Where("status <> 'failed'").
			Scan(ctx, &rows); err != nil {
			return nil, nil, fmt.Errorf("summing revenue: %w", err)
		}
		for _, row := range rows {
			add(row.Currency, row.OccurredAt, row.Amount, 1)
		}
	}
	out := make([]RevenueSeries, 0, len(byCur))
	for _, s := range byCur {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return starts, out, nil
}

// FunnelStep is how many users reached one step.
type FunnelStep struct {
	Event          string  `json:"event"`
	Users          int64   `json:"users"`
	Conversion     float64 `json:"conversion"`     // of the first step
	StepConversion float64 `json:"stepConversion"` // of the previous step
}

// Funnel counts users who did the steps in order, each within window of
// the user's first step in [from, to).
func (q *Queries) Funnel(ctx context.Context, projectID string, steps []string, window time.Duration, from, to time.Time) ([]FunnelStep, error) {
	var rows []struct {
		DistinctID string    `bun:"distinct_id"`
		Type       string    `bun:"type"`
		OccurredAt time.Time `bun:"occurred_at"`
	}
	err := q.events(projectID, from, to.Add(window)).ColumnExpr(distinctExpr+" AS distinct_id").Column("type", "occurred_at").
		Where("type IN (?)", bun.In(steps)).OrderExpr(distinctExpr+", occurred_at, id").Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("reading funnel events: %w", err)
	}
	reached := make([]int64, len(steps))
	for i := 0; i < len(rows); {
		j := i
		for j < len(rows) && rows[j].DistinctID == rows[i].DistinctID {
			j++
		}
		// One user's events in time order: enter at the first first-step
		// event in range, then take each next step greedily.
		step, deadline := 0, time.Time{}
		for _, e := range rows[i:j] {
			if step == 0 {
				if e.Type == steps[0] && e.OccurredAt.Before(to) {
					step, deadline = 1, e.OccurredAt.Add(window)
				}
				continue
			}
			if step < len(steps) && e.Type == steps[step] && !e.OccurredAt.After(deadline) {
				step++
			}
		}
		for s := 0; s < step; s++ {
			reached[s]++
		}
		i = j
	}
	out := make([]FunnelStep, len(steps))
	for s := range steps {
		out[s] = FunnelStep{Event: steps[s], Users: reached[s]}
		if reached[0] > 0 {
			out[s].Conversion = float64(reached[s]) / float64(reached[0])
		}
		if s == 0 {
			out[s].StepConversion = 1
			if reached[0] == 0 {
				out[s].StepConversion = 0
			}
		} else if reached[s-1] > 0 {
			out[s].StepConversion = float64(reached[s]) / float64(reached[s-1])
		}
	}
	return out, nil
}

// Cohort is the users first seen in one period and how many of them were
// active in each period since (period 0 is the cohort's own).
type Cohort struct {
	Start    time.Time `json:"start"`
	Size     int64     `json:"size"`
	Retained []int64   `json:"retained"`
	Rates    []float64 `json:"rates"`
}

// Retention builds cohorts of identified users by first-seen day or week
// (UTC) in [from, to) and counts their activity in the following periods.
func (q *Queries) Retention(ctx context.Context, projectID string, period Bucket, from, to time.Time, periods int) ([]Cohort, error) {
	r := Range{From: from, To: to, Bucket: period, Loc: time.UTC}
	starts, end, err := r.Starts()
	if err != nil || len(starts) == 0 {
		return nil, err
	}
	periodStarts, horizon := r.extend(starts, end, periods)
	users, err := q.firstSeen(ctx, projectID, starts[0], end)
	if err != nil {
		return nil, err
	}
	cohorts, cohortOf := groupCohorts(starts, end, users, periods)
	var active []dayActive
	if period == Week {
		active, err = q.weeklyActivity(ctx, projectID, cohortOf, starts[0], horizon)
	} else {
		active, err = q.dailyActivity(ctx, projectID, starts[0], horizon)
	}
	if err != nil {
		return nil, err
	}
	countRetained(cohorts, cohortOf, active, periodStarts, horizon, periods)
	fillRates(cohorts)
	return cohorts, nil
}

// extend adds the n buckets after end to starts, the periods a cohort's
// activity is counted in, and returns them and the end of the last.
func (r Range) extend(starts []time.Time, end time.Time, n int) ([]time.Time, time.Time) {
	horizon := end
	for range n {
		horizon = r.next(horizon)
	}
	extended := slices.Clone(starts)
	for t := end; t.Before(horizon); t = r.next(t) {
		extended = append(extended, t)
	}
	return extended, horizon
}

// firstSeenUser is an end user and when it was first seen.
type firstSeenUser struct {
	ExternalID  string    `bun:"external_id"`
	FirstSeenAt time.Time `bun:"first_seen_at"`
}

// firstSeen reads the project's users first seen in [from, to).
func (q *Queries) firstSeen(ctx context.Context, projectID string, from, to time.Time) ([]firstSeenUser, error) {
	var users []firstSeenUser
	if err := q.idb.NewSelect().Table("end_users").Column("external_id", "first_seen_at").
		Where(q.inProject(), projectID).Where("first_seen_at >= ?", from).Where("first_seen_at < ?", to).
		Scan(ctx, &users); err != nil {
		return nil, fmt.Errorf("reading cohorts: %w", err)
	}
	return users, nil
}

// groupCohorts puts each user in the cohort of the period it was first
// seen in, and returns the cohorts and each user's cohort.
func groupCohorts(starts []time.Time, end time.Time, users []firstSeenUser, periods int) ([]Cohort, map[string]int) {
	cohortOf := make(map[string]int, len(users))
	cohorts := make([]Cohort, len(starts))
	for i := range cohorts {
		cohorts[i] = Cohort{Start: starts[i], Retained: make([]int64, periods+1), Rates: make([]float64, periods+1)}
	}
	for _, u := range users {
		if i := index(starts, end, u.FirstSeenAt); i >= 0 {
			cohortOf[u.ExternalID] = i
			cohorts[i].Size++
		}
	}
	return cohorts, cohortOf
}

// dayActive is a user active on a day (or in the week starting on it).
type dayActive struct {
	Day        time.Time `bun:"day"`
	DistinctID string    `bun:"distinct_id"`
}

// weeklyActivity is the weeks in [from, to) the cohorts' users were
// active in, looked up by user in the weekly roll-up (a day is active in
// the week holding it): cohorts are small next to everyone's activity.
func (q *Queries) weeklyActivity(ctx context.Context, projectID string, cohortOf map[string]int, from, to time.Time) ([]dayActive, error) {
	ids := make([]string, 0, len(cohortOf))
	for id := range cohortOf {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var active []dayActive
	for chunk := range slices.Chunk(ids, 500) {
		var rows []dayActive
		if err := q.idb.NewSelect().Table("weekly_users").ColumnExpr("week AS day, distinct_id").
			Where(q.inProject(), projectID).Where("distinct_id IN (?)", bun.In(chunk)).
			Where("week >= ?", from).Where("week < ?", to).Scan(ctx, &rows); err != nil {
			return nil, fmt.Errorf("reading activity: %w", err)
		}
		active = append(active, rows...)
	}
	return active, nil
}

// dailyActivity is every user's active days in [from, to).
func (q *Queries) dailyActivity(ctx context.Context, projectID string, from, to time.Time) ([]dayActive, error) {
	var active []dayActive
	if err := q.idb.NewSelect().Table("daily_users").Column("day", "distinct_id").
		Where(q.inProject(), projectID).Where("day >= ?", from).Where("day < ?", to).
		Scan(ctx, &active); err != nil {
		return nil, fmt.Errorf("reading activity: %w", err)
	}
	return active, nil
}

// countRetained counts, for each cohort and each of the periods since
// its own (period 0), its distinct users active in that period.
func countRetained(cohorts []Cohort, cohortOf map[string]int, active []dayActive, periodStarts []time.Time, horizon time.Time, periods int) {
	seen := map[[2]int]map[string]struct{}{}
	for _, a := range active {
		c, ok := cohortOf[a.DistinctID]
		if !ok {
			continue
		}
		p := index(periodStarts, horizon, a.Day) - c
		if p < 0 || p > periods {
			continue
		}
		k := [2]int{c, p}
		if seen[k] == nil {
			seen[k] = map[string]struct{}{}
		}
		seen[k][a.DistinctID] = struct{}{}
	}
	for k, ids := range seen {
		cohorts[k[0]].Retained[k[1]] = int64(len(ids))
	}
}

// fillRates sets each cohort's rates: the share of its users retained.
func fillRates(cohorts []Cohort) {
	for i := range cohorts {
		for p := range cohorts[i].Retained {
			if cohorts[i].Size > 0 {
				cohorts[i].Rates[p] = float64(cohorts[i].Retained[p]) / float64(cohorts[i].Size)
			}
		}
	}
}
