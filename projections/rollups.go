package projections

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/readmodel"
)

// rollupFold is what events add to the roll-up tables: the hourly and
// daily counts, the hourly revenue, and each user's days with each event
// type (daily_event_users, from which the daily, weekly and monthly user
// sets derive, userSets). It is the one place these rules live. Apply
// folds a batch and merges the result into the stored rows; the bulk
// replay folds the whole log into one and writes its rows. They differ in
// how they read what is stored and write rows, not in what an event adds.
type rollupFold struct {
	hourly, daily counter
	revenue       revenueSums
	typeDays      typeDaysFold
}

func newRollupFold() *rollupFold { return &rollupFold{typeDays: typeDaysFold{}} }

// add folds a counted (tracked or identified, not rejected) event into the
// counts and the user's days.
func (f *rollupFold) add(row *readmodel.Event) {
	f.hourly.add(rollupKey{row.ProjectID, row.Type, row.OccurredAt.Truncate(time.Hour).Unix()}, 1)
	f.daily.add(rollupKey{row.ProjectID, row.Type, UTCDay(row.OccurredAt).Unix()}, 1)
	f.typeDays.add(row)
}

// addRevenue folds a counted event's amount into the hourly revenue, once
// its status is what it is stored with: a failed purchase is no revenue.
// sign is 1 for an event counted, -1 for one taken back (a purchase that
// failed after it was counted; its Amount is the negated amount).
func (f *rollupFold) addRevenue(row *readmodel.Event, sign int64) {
	if row.Amount == nil || row.Currency == nil || row.Status == readmodel.StatusFailed {
		return
	}
	f.revenue.add(rollupKey{row.ProjectID, *row.Currency, row.OccurredAt.Truncate(time.Hour).Unix()}, *row.Amount, sign)
}

func (f *rollupFold) hourlyRows(keys []rollupKey) []readmodel.EventCountHourly {
	rows := make([]readmodel.EventCountHourly, len(keys))
	for i, k := range keys {
		rows[i] = readmodel.EventCountHourly{ProjectID: k.project, EventType: k.name, BucketStart: k.time(), Count: f.hourly.counts[k]}
	}
	return rows
}

func (f *rollupFold) dailyRows(keys []rollupKey) []readmodel.EventCountDaily {
	rows := make([]readmodel.EventCountDaily, len(keys))
	for i, k := range keys {
		rows[i] = readmodel.EventCountDaily{ProjectID: k.project, EventType: k.name, Day: k.time(), Count: f.daily.counts[k]}
	}
	return rows
}

func (f *rollupFold) revenueRows(keys []rollupKey) []readmodel.RevenueHourly {
	rows := make([]readmodel.RevenueHourly, len(keys))
	for i, k := range keys {
		s := f.revenue.sums[k]
		rows[i] = readmodel.RevenueHourly{ProjectID: k.project, Currency: k.name, BucketStart: k.time(), Amount: s.amount, Count: s.count}
	}
	return rows
}

// rollupKey is one bucket of a roll-up: a project, an event type, currency
// or period, and the bucket's start in Unix seconds.
type rollupKey struct {
	project, name string
	at            int64
}

func (k rollupKey) time() time.Time { return time.Unix(k.at, 0).UTC() }

func compareRollupKeys(a, b rollupKey) int {
	return cmp.Or(strings.Compare(a.project, b.project), strings.Compare(a.name, b.name), cmp.Compare(a.at, b.at))
}

// counter adds to keyed counts and remembers the order keys first
// appeared in, so that the rows Apply writes are in a stable order.
type counter struct {
	counts map[rollupKey]int64
	order  []rollupKey
}

func (c *counter) add(k rollupKey, n int64) {
	if c.counts == nil {
		c.counts = map[rollupKey]int64{}
	}
	if _, ok := c.counts[k]; !ok {
		c.order = append(c.order, k)
	}
	c.counts[k] += n
}

// sorted is the keys in key order: the order SQLite appends to its B-tree
// in, and PostgreSQL's index build finds sorted.
func (c *counter) sorted() []rollupKey {
	return slices.SortedFunc(slices.Values(c.order), compareRollupKeys)
}

// revenueSums adds amounts, saturating as domain.AddAmounts does, and
// counts the purchases, per bucket.
type revenueSums struct {
	sums  map[rollupKey]revenueSum
	order []rollupKey
}

type revenueSum struct{ amount, count int64 }

func (r *revenueSums) add(k rollupKey, amount, n int64) {
	if r.sums == nil {
		r.sums = map[rollupKey]revenueSum{}
	}
	s, ok := r.sums[k]
	if !ok {
		r.order = append(r.order, k)
	}
	r.sums[k] = revenueSum{domain.AddAmounts(s.amount, amount), s.count + n}
}

func (r *revenueSums) sorted() []rollupKey {
	return slices.SortedFunc(slices.Values(r.order), compareRollupKeys)
}
