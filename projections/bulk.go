package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// A replay starts from empty shadow tables, so the events projection can
// build them far faster than Apply does, batch after batch, for live
// traffic: event rows are bulk-loaded (COPY on PostgreSQL, large
// transactions of multi-row inserts on SQLite) into tables without
// secondary indexes, outcomes are folded into their rows in memory while
// the rows wait to be written, and end users and the roll-ups are folded in
// memory by the code Apply folds a batch with (rollupFold: counts, revenue,
// each user's days per event type, and the sets of daily, weekly and
// monthly users derived from those days); then the indexes are built and
// Apply takes over for the catch-up. The result is the same rows Apply
// would have written (TestBulkReplayBuildsWhatApplyBuilds).

// bulkLoader is implemented by projections that can build their tables
// from the start of the log faster than Apply.
type bulkLoader interface {
	newBulk(ctx context.Context, db *store.DB, schema string, log *slog.Logger, progress io.Writer, setAside setAsideFunc) (bulkBuild, error)
}

// setAsideFunc quarantines a record a build cannot fold, as the live
// projection would.
type setAsideFunc func(ctx context.Context, rec *kgo.Record, err error) error

// bulkBuild receives the log in order, then builds what is derived.
type bulkBuild interface {
	// add folds records (each partition's in offset order).
	add(ctx context.Context, records []*kgo.Record) error
	// full reports that the build holds as much in memory as it should;
	// the replay then finishes it and continues with Apply.
	full() bool
	// finish writes what is left, the derived tables, the indexes and the
	// checkpoints, leaving tables Apply can carry on from.
	finish(ctx context.Context, checkpoints []readmodel.Checkpoint) error
	// close releases the build's connections; safe after finish.
	close()
}

// bulkWindow rows wait in memory for their outcome before being written,
// bulkFlush at a time; outcomes arriving later are applied in SQL at the
// end. Variables so tests can take the late path.
var bulkWindow, bulkFlush = 100_000, 25_000

const (
	// bulkMaxEvents bounds the ids, end users and (user, event type) day
	// lists held in memory; past it the replay finishes the bulk build and
	// goes on with Apply.
	bulkMaxEvents = 20_000_000
)

// bulkEnvelope decodes an event and whichever payload of the events topic
// it carries in one pass.
type bulkEnvelope struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	ProjectID  string    `json:"projectId"`
	OccurredAt time.Time `json:"occurredAt"`
	ReceivedAt time.Time `json:"receivedAt"`
	Data       bulkData  `json:"data"`
}

// bulkData is a tracked event's payload or an outcome's.
type bulkData struct {
	domain.TrackedData
	EventID string `json:"eventId"`
}

type bulkUserKey struct{ project, id string }

type lateOutcome struct {
	id string
	o  outcome
}

type eventsBulk struct {
	p        *Events
	db       *store.DB
	schema   string
	log      *slog.Logger
	setAside setAsideFunc
	w        bulkWriter   // the first of ws
	ws       []bulkWriter // one a connection
	// progress, if set, is told how long each step of finish takes.
	progress io.Writer

	seen    map[uuid.UUID]struct{}
	seenStr map[string]struct{} // ids that are not UUIDs
	buf     []*readmodel.Event
	bufIdx  map[string]*readmodel.Event
	late    []lateOutcome
	lateIdx map[string]bool
	// orphans are outcomes whose event was not folded (it is quarantined).
	orphans map[string]outcome
	// pending is the last poll's records, being decoded; spare is a
	// folded poll's buffer, for the next.
	pending *pendingDecode
	spare   []decodedRecord

	// rollups are the roll-ups folded so far; a row's revenue is folded
	// when it is written, its outcome known (or taken back, applyLate).
	rollups *rollupFold

	// keys are the projects' keys in the tables (store.ProjectKeys), as
	// the build met them.
	keys map[string]string

	users *userFold

	out  chan []*readmodel.Event
	done chan error
}

func (p *Events) newBulk(ctx context.Context, db *store.DB, schema string, log *slog.Logger, progress io.Writer,
	setAside setAsideFunc,
) (bulkBuild, error) {
	// PostgreSQL takes rows on two connections (which then share the
	// finishing work); SQLite has one writer.
	n := 1
	if db.Dialect == store.Postgres {
		n = 2
	}
	var ws []bulkWriter
	for range n {
		w, err := newBulkWriter(ctx, db, schema)
		if err != nil {
			for _, w := range ws {
				w.close()
			}
			return nil, err
		}
		ws = append(ws, w)
	}
	b := &eventsBulk{p: p, db: db, schema: schema, log: log, w: ws[0], ws: ws, progress: progress, setAside: setAside,
		seen: map[uuid.UUID]struct{}{}, seenStr: map[string]struct{}{}, bufIdx: map[string]*readmodel.Event{},
		lateIdx: map[string]bool{}, orphans: map[string]outcome{}, rollups: newRollupFold(), users: newUserFold(),
		keys: map[string]string{}, out: make(chan []*readmodel.Event, n), done: make(chan error, n)}
	// Rows are written while the next records decode. A writer that fails
	// keeps draining, so flush never blocks; finish reports the error.
	out := b.out
	for _, w := range ws {
		go func() {
			var err error
			for rows := range out {
				if err == nil {
					err = w.events(ctx, rows)
				}
			}
			b.done <- err
		}()
	}
	return b, nil
}

// projectKey is what the tables hold for project id. store.ProjectKeys
// hands a SQLite key out in a transaction of its own, committed at once
// (the shadow is dropped whole if the build fails), so the build can keep
// it.
func (b *eventsBulk) projectKey(ctx context.Context, id string) (string, error) {
	if k, ok := b.keys[id]; ok {
		return k, nil
	}
	keys, err := store.ProjectKeys(ctx, b.db.DB, []string{id})
	if err != nil {
		return "", fmt.Errorf("replay: %w", err)
	}
	b.keys[id] = keys[id]
	return keys[id], nil
}

// stopWriters closes the rows' channel and waits for the writers.
func (b *eventsBulk) stopWriters() error {
	if b.out == nil {
		return nil
	}
	close(b.out)
	b.out = nil
	var first error
	for range b.ws {
		if err := <-b.done; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// canonicalUUID parses id when it is a UUID in its canonical form (36
// characters, lower-case hex), the only form it may be keyed by as 16
// bytes and still compare equal as a string; it allocates nothing.
func canonicalUUID(id string) (uuid.UUID, bool) {
	if len(id) != 36 {
		return uuid.UUID{}, false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c >= 'A' && c <= 'F' {
			return uuid.UUID{}, false
		}
	}
	u, err := uuid.Parse(id)
	return u, err == nil
}

// firstSight records id, reporting false if it was seen before.
func (b *eventsBulk) firstSight(id string) bool {
	if u, ok := canonicalUUID(id); ok {
		if _, ok := b.seen[u]; ok {
			return false
		}
		b.seen[u] = struct{}{}
		return true
	}
	if _, ok := b.seenStr[id]; ok {
		return false
	}
	b.seenStr[id] = struct{}{}
	return true
}

func (b *eventsBulk) wasSeen(id string) bool {
	if u, ok := canonicalUUID(id); ok {
		_, ok := b.seen[u]
		return ok
	}
	_, ok := b.seenStr[id]
	return ok
}

func (b *eventsBulk) full() bool {
	return len(b.seen)+len(b.seenStr)+len(b.users.users)+len(b.rollups.typeDays) >= bulkMaxEvents
}

// decodedRecord is one record as add decodes it: its envelope, whether it
// is an event to fold, or why the live projection could not apply it
// (then it is quarantined, as the live projection would).
type decodedRecord struct {
	rec *kgo.Record
	env bulkEnvelope
	use bool
	err error
}

// decode decodes a record into d.
func (b *eventsBulk) decode(rec *kgo.Record, d *decodedRecord) {
	*d = decodedRecord{rec: rec, use: true}
	v := rec.Value
	if decodeBulkEnvelope(v, &d.env) {
		d.err = checkEnvelope(&d.env)
		return
	}
	d.env = bulkEnvelope{}
	if err := json.Unmarshal(v, &d.env); err == nil {
		d.err = checkEnvelope(&d.env)
		return
	}
	// Not an event this decoder reads: decode it as the runner does, so
	// the same records are skipped or quarantined.
	d.use = false
	var e domain.Event
	if err := json.Unmarshal(v, &e); err != nil || e.ID == "" || e.Type == "" {
		if err == nil {
			err = errors.New("not an event envelope: no id or type")
		}
		d.err = fmt.Errorf("undecodable record: %w", err)
		return
	}
	switch e.Type {
	case domain.EventTracked, domain.UserIdentified, domain.EventRejected:
		_, d.err = domain.DecodeData[domain.TrackedData](&e)
	case domain.EventProcessed, domain.EventFailed:
		_, d.err = domain.DecodeData[domain.OutcomeData](&e)
	}
}

// checkEnvelope refuses what Apply refuses: an event no database stores.
func checkEnvelope(env *bulkEnvelope) error {
	if env.ID == "" || env.Type == "" {
		return errors.New("undecodable record: not an event envelope: no id or type")
	}
	e := domain.Event{ID: env.ID, Type: env.Type, ProjectID: env.ProjectID}
	switch env.Type {
	case domain.EventTracked, domain.UserIdentified, domain.EventRejected:
		return checkTracked(&e, &env.Data.TrackedData)
	case domain.EventProcessed, domain.EventFailed:
		return checkOutcome(&e, &domain.OutcomeData{EventID: env.Data.EventID, Reason: env.Data.Reason})
	}
	return nil
}

// bulkDecodeSplit is the fewest records a poll's decoding is split
// between two goroutines for.
const bulkDecodeSplit = 1024

// pendingDecode is one poll's records being decoded while the previous
// poll's are folded.
type pendingDecode struct {
	records []decodedRecord
	done    chan struct{}
}

// add starts decoding records in the background and folds the previous
// poll's records meanwhile: the goroutine calling add only folds, which
// must be done in order. finish folds the last poll's.
func (b *eventsBulk) add(ctx context.Context, values []*kgo.Record) error {
	next := b.startDecode(values)
	err := b.foldPending(ctx)
	b.pending = next
	return err
}

func (b *eventsBulk) startDecode(values []*kgo.Record) *pendingDecode {
	values = slices.Clone(values) // the caller reuses its slice
	records := b.spare
	b.spare = nil
	if cap(records) < len(values) {
		records = make([]decodedRecord, len(values))
	}
	p := &pendingDecode{records: records[:len(values)], done: make(chan struct{})}
	decode := func(from, to int) {
		for i := from; i < to; i++ {
			b.decode(values[i], &p.records[i])
		}
	}
	half := len(values)
	var wg sync.WaitGroup
	if len(values) >= bulkDecodeSplit {
		half = len(values) / 2
		wg.Go(func() { decode(half, len(values)) })
	}
	go func() {
		decode(0, half)
		wg.Wait()
		close(p.done)
	}()
	return p
}

// foldPending folds the records of the poll being decoded, once they are.
func (b *eventsBulk) foldPending(ctx context.Context) error {
	p := b.pending
	if p == nil {
		return nil
	}
	b.pending = nil
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for i := range p.records {
		d := &p.records[i]
		if d.err != nil {
			if err := b.setAside(ctx, d.rec, d.err); err != nil {
				return err
			}
			continue
		}
		if !d.use {
			continue
		}
		if err := b.fold(ctx, &d.env); err != nil {
			return err
		}
	}
	b.spare = p.records[:0]
	return nil
}

// fold folds one decoded record into the build.
func (b *eventsBulk) fold(ctx context.Context, env *bulkEnvelope) error {
	if env.ID == "" || env.Type == "" {
		b.log.Error("skipping undecodable record", "id", env.ID, "type", env.Type)
		return nil
	}
	switch env.Type {
	case domain.EventTracked, domain.UserIdentified, domain.EventRejected:
		if !b.firstSight(env.ID) {
			return nil // a re-sent duplicate: the first copy stands
		}
		e := domain.Event{ID: env.ID, Type: env.Type, ProjectID: env.ProjectID, OccurredAt: env.OccurredAt, ReceivedAt: env.ReceivedAt}
		r := newTrackedRow(&e, &env.Data.TrackedData)
		key, err := b.projectKey(ctx, r.row.ProjectID)
		if err != nil {
			return err
		}
		r.row.ProjectID = key
		if o, ok := b.orphans[r.row.ID]; ok && r.row.Status == readmodel.StatusPending {
			// Its outcome came first (Apply adopts it the same way).
			setOutcome(&r.row, o)
			delete(b.orphans, r.row.ID)
		}
		b.buf = append(b.buf, &r.row)
		b.bufIdx[r.row.ID] = &r.row
		if r.counted {
			b.users.add(r)
			b.rollups.add(&r.row)
		}
		if len(b.buf) >= bulkWindow {
			if err := b.flush(ctx, bulkFlush); err != nil {
				return err
			}
		}
	case domain.EventProcessed, domain.EventFailed:
		o := newOutcome(env.ProjectID, env.Type, env.Data.Reason, env.OccurredAt)
		id := env.Data.EventID
		if row, ok := b.bufIdx[id]; ok {
			if row.Status == readmodel.StatusPending {
				setOutcome(row, o)
			}
			return nil
		}
		// Written already: applied with the others at the end (the
		// first outcome wins, as the status = 'pending' guard does).
		switch {
		case b.lateIdx[id]:
		case b.wasSeen(id):
			b.lateIdx[id] = true
			b.late = append(b.late, lateOutcome{id, o})
		case b.orphans[id] == (outcome{}):
			// No event for it (yet): it waits, as Apply keeps it.
			b.orphans[id] = o
		}
	}
	return nil
}

// flush hands the n oldest rows to the writer.
func (b *eventsBulk) flush(ctx context.Context, n int) error {
	n = min(n, len(b.buf))
	if n == 0 {
		return nil
	}
	rows := make([]*readmodel.Event, n)
	copy(rows, b.buf)
	for _, r := range rows {
		delete(b.bufIdx, r.ID)
		if !r.Rejected {
			b.rollups.addRevenue(r, 1)
		}
	}
	b.buf = append(b.buf[:0], b.buf[n:]...)
	select {
	case b.out <- rows:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// took tells the progress, if any, how long a step took since began.
func (b *eventsBulk) took(step string, began time.Time) {
	if b.progress != nil {
		fmt.Fprintf(b.progress, "replay events: %s in %s\n", step, time.Since(began).Round(time.Millisecond))
	}
}

// bulkTask is one step of finishing a bulk build; it runs once the
// tasks it depends on are done, on whichever connection is free.
type bulkTask struct {
	name  string
	deps  []string
	chain chain
	run   func(ctx context.Context, w bulkWriter) error
}

// chain says where a task stands in the build: tasks on the longest chain
// of dependencies go ahead of the others, so the build ends sooner.
type chain int

const (
	sideChain chain = iota
	longestChain
)

func (b *eventsBulk) finish(ctx context.Context, checkpoints []readmodel.Checkpoint) error {
	if err := b.drain(ctx); err != nil {
		return err
	}
	plan := &bulkPlan{b: b, ctx: ctx}
	if err := b.planTables(plan); err != nil {
		return err
	}
	// On PostgreSQL one connection builds an index while the other fills
	// a table or builds another.
	sort.SliceStable(plan.tasks, func(i, j int) bool { return plan.tasks[i].chain > plan.tasks[j].chain })
	if err := b.runTasks(ctx, plan.tasks, b.ws); err != nil {
		return err
	}
	return b.w.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if len(checkpoints) == 0 {
			return nil
		}
		_, err := tx.NewInsert().Model(&checkpoints).Exec(ctx)
		return err
	})
}

// drain writes the last buffered rows and stops the writers.
func (b *eventsBulk) drain(ctx context.Context) error {
	began := time.Now()
	if err := b.foldPending(ctx); err != nil {
		return err
	}
	if err := b.flush(ctx, len(b.buf)); err != nil {
		return err
	}
	if err := b.stopWriters(); err != nil {
		return err
	}
	b.seen, b.seenStr, b.bufIdx = nil, nil, nil
	b.took("last rows written", began)
	return nil
}

// bulkPlan gathers the tasks of a build; the first error stops it.
type bulkPlan struct {
	b     *eventsBulk
	ctx   context.Context
	tasks []bulkTask
	err   error
}

// table adds the tasks that fill, index and finish one table.
func (p *bulkPlan) table(name string, deps []string, c chain, fill func(ctx context.Context, w bulkWriter) error) {
	if p.err != nil {
		return
	}
	t, err := p.b.tableTasks(p.ctx, name, deps, c, fill)
	p.tasks, p.err = append(p.tasks, t...), err
}

// planTables plans every table of the build. Every table's indexes build
// side by side; the events' primary key serves the late outcomes'
// update, which revenue waits for.
func (b *eventsBulk) planTables(plan *bulkPlan) error {
	plan.table("events", nil, sideChain, nil)
	plan.tasks = append(plan.tasks, bulkTask{name: "late outcomes", deps: []string{"events"}, run: b.applyLate})
	if err := b.planUsers(plan); err != nil {
		return err
	}
	b.planCounts(plan)
	b.planTypeDays(plan)
	return plan.err
}

// planUsers plans the end users, their aliases and the orphan outcomes.
func (b *eventsBulk) planUsers(plan *bulkPlan) error {
	began := time.Now()
	users, aliases, err := b.endUsers()
	if err != nil {
		return err
	}
	b.took("end users folded", began)
	plan.table("end_users", nil, sideChain, func(ctx context.Context, w bulkWriter) error {
		return w.rows(ctx, "end_users", endUserColumns, len(users), func(i int, v []any) {
			r := &users[i]
			v[0], v[1], v[2], v[3], v[4], v[5], v[6] = projectKey(r.ProjectID), r.ExternalID, r.Traits, r.TraitVersions,
				r.FirstSeenAt, r.LastSeenAt, r.EventCount
		})
	})
	orphans := b.orphanRows()
	plan.table("orphan_outcomes", nil, sideChain, func(ctx context.Context, w bulkWriter) error {
		return w.rows(ctx, "orphan_outcomes", orphanColumns, len(orphans), func(i int, v []any) {
			r := &orphans[i]
			v[0], v[1], v[2], v[3], v[4] = r.EventID, r.ProjectID, r.Status, r.Reason, r.At
		})
	})
	plan.table("end_user_aliases", nil, sideChain, func(ctx context.Context, w bulkWriter) error {
		return w.rows(ctx, "end_user_aliases", aliasColumns, len(aliases), func(i int, v []any) {
			r := &aliases[i]
			v[0], v[1], v[2], v[3] = projectKey(r.ProjectID), r.AnonymousID, r.ExternalID, r.LinkedAt
		})
	})
	return nil
}

// planCounts plans the hourly and daily counts and the hourly revenue, in
// key order. The revenue waits for the late outcomes, which take failed
// purchases back out of it.
func (b *eventsBulk) planCounts(plan *bulkPlan) {
	f := b.rollups
	hourly, daily := f.hourlyRows(f.hourly.sorted()), f.dailyRows(f.daily.sorted())
	f.hourly, f.daily = counter{}, counter{}
	plan.table("event_counts_hourly", nil, sideChain, func(ctx context.Context, w bulkWriter) error {
		return w.rows(ctx, "event_counts_hourly", hourlyColumns, len(hourly), func(i int, v []any) {
			r := &hourly[i]
			v[0], v[1], v[2], v[3] = projectKey(r.ProjectID), r.EventType, r.BucketStart, r.Count
		})
	})
	plan.table("event_counts_daily", nil, sideChain, func(ctx context.Context, w bulkWriter) error {
		return w.rows(ctx, "event_counts_daily", dailyCountColumns, len(daily), func(i int, v []any) {
			r := &daily[i]
			v[0], v[1], v[2], v[3] = projectKey(r.ProjectID), r.EventType, r.Day, r.Count
		})
	})
	plan.table("revenue_hourly", []string{"late outcomes"}, sideChain, func(ctx context.Context, w bulkWriter) error {
		// A bucket whose purchases all failed is none (writeRevenue).
		rows := slices.DeleteFunc(f.revenueRows(f.revenue.sorted()), func(r readmodel.RevenueHourly) bool { return r.Count == 0 })
		return w.rows(ctx, "revenue_hourly", revenueColumns, len(rows), func(i int, v []any) {
			r := &rows[i]
			v[0], v[1], v[2], v[3], v[4] = projectKey(r.ProjectID), r.Currency, r.BucketStart, r.Amount, r.Count
		})
	})
}

// planTypeDays plans the daily event users (the longest chain) and the
// user sets. Both read the fold; the sets are folded once, by whichever of
// their tables is filled first, while the other connection works on.
func (b *eventsBulk) planTypeDays(plan *bulkPlan) {
	typeDays := b.rollups.typeDays
	b.rollups.typeDays = nil
	plan.table("daily_event_users", nil, longestChain, func(ctx context.Context, w bulkWriter) error {
		var rows []readmodel.DailyEventUser
		if b.db.Dialect == store.SQLite {
			rows = typeDays.rowsInKeyOrder() // the order SQLite appends to its B-tree in
		} else {
			rows = typeDays.rows() // PostgreSQL sorts as it builds the key's index anyway
		}
		return w.rows(ctx, "daily_event_users", typeDayColumns, len(rows), func(i int, v []any) {
			r := &rows[i]
			v[0], v[1], v[2], v[3], v[4], v[5], v[6] = projectKey(r.ProjectID), r.EventType, r.DistinctID, r.Day, r.FirstAt, r.LastAt, r.PrevLastAt
		})
	})
	sets := sync.OnceValue(func() *userSets {
		began := time.Now()
		s := typeDays.userSets()
		b.took("user sets folded", began)
		return &s
	})
	plan.table("daily_users", nil, sideChain, func(ctx context.Context, w bulkWriter) error {
		s := sets()
		return w.rows(ctx, "daily_users", dailyUserColumns, len(s.daily), func(i int, v []any) {
			r := &s.daily[i]
			v[0], v[1], v[2] = projectKey(r.ProjectID), r.Day, r.DistinctID
		})
	})
	plan.table("weekly_users", nil, sideChain, func(ctx context.Context, w bulkWriter) error {
		s := sets()
		return w.rows(ctx, "weekly_users", weeklyUserColumns, len(s.weekly), func(i int, v []any) {
			r := &s.weekly[i]
			v[0], v[1], v[2] = projectKey(r.ProjectID), r.DistinctID, r.Week
		})
	})
	plan.table("monthly_users", nil, sideChain, func(ctx context.Context, w bulkWriter) error {
		s := sets()
		return w.rows(ctx, "monthly_users", monthlyUserColumns, len(s.monthly), func(i int, v []any) {
			r := &s.monthly[i]
			v[0], v[1], v[2] = projectKey(r.ProjectID), r.DistinctID, r.Month
		})
	})
	plan.table("active_user_counts", nil, sideChain, func(ctx context.Context, w bulkWriter) error {
		counts := sets().activeCounts()
		return w.rows(ctx, "active_user_counts", activeCountColumns, len(counts), func(i int, v []any) {
			r := &counts[i]
			v[0], v[1], v[2], v[3] = projectKey(r.ProjectID), r.Period, r.PeriodStart, r.Users
		})
	})
}

// tableTasks fills a table once deps are done (task "<table> loaded",
// which tasks reading its rows wait for; none if fill is nil, the rows
// being there already), builds each of its indexes as a task of its own
// ("<table> index i"), then finishes it (task "<table>": constraints and
// statistics).
func (b *eventsBulk) tableTasks(ctx context.Context, table string, deps []string, c chain,
	fill func(ctx context.Context, w bulkWriter) error) ([]bulkTask, error) {
	build, finish, err := b.w.indexPlan(ctx, table)
	if err != nil {
		return nil, err
	}
	var tasks []bulkTask
	if fill != nil {
		tasks = append(tasks, bulkTask{name: table + " loaded", deps: deps, chain: c, run: fill})
		deps = []string{table + " loaded"}
	}
	built := deps
	for i, s := range build {
		name := fmt.Sprintf("%s index %d", table, i)
		built = append(slices.Clip(built), name)
		tasks = append(tasks, bulkTask{name: name, deps: deps, chain: c, run: func(ctx context.Context, w bulkWriter) error {
			return w.exec(ctx, s)
		}})
	}
	return append(tasks, bulkTask{name: table, deps: built, run: func(ctx context.Context, w bulkWriter) error {
		for _, s := range finish {
			if err := w.exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}}), nil
}

// runTasks runs tasks on writers, each as soon as its dependencies are
// done and a writer is free; the first error stops it.
func (b *eventsBulk) runTasks(ctx context.Context, tasks []bulkTask, writers []bulkWriter) error {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	done := map[string]bool{}
	started := make([]bool, len(tasks))
	var firstErr error
	next := func() int { // under mu; -1 when nothing is left, -2 to wait
		left := false
		for i, t := range tasks {
			if started[i] {
				continue
			}
			left = true
			ready := true
			for _, d := range t.deps {
				ready = ready && done[d]
			}
			if ready {
				return i
			}
		}
		if !left {
			return -1
		}
		return -2
	}
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			for firstErr == nil {
				i := next()
				if i == -1 {
					return
				}
				if i == -2 {
					cond.Wait()
					continue
				}
				started[i] = true
				mu.Unlock()
				began := time.Now()
				err := tasks[i].run(ctx, w)
				if err == nil {
					b.took(tasks[i].name+" built", began)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				done[tasks[i].name] = true
				cond.Broadcast()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

var orphanColumns = []string{"event_id", "project_id", "status", "reason", "at"}

// orphanRows returns the outcomes still waiting for their events, in id
// order.
func (b *eventsBulk) orphanRows() []readmodel.OrphanOutcome {
	rows := make([]readmodel.OrphanOutcome, 0, len(b.orphans))
	for id, o := range b.orphans {
		rows = append(rows, readmodel.OrphanOutcome{EventID: id, ProjectID: o.project, Status: o.status,
			Reason: optional(o.reason), At: o.at.UTC()})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].EventID < rows[j].EventID })
	b.orphans = nil
	return rows
}

// applyLate applies the outcomes that arrived after their rows were
// written.
func (b *eventsBulk) applyLate(ctx context.Context, w bulkWriter) error {
	if len(b.late) == 0 {
		return nil
	}
	ids := make([]string, len(b.late))
	byID := make(map[string]outcome, len(b.late))
	for i, l := range b.late {
		ids[i], byID[l.id] = l.id, l.o
	}
	return w.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		refunds, err := b.p.applyOutcomes(ctx, tx, b.db, ids, byID)
		for _, r := range refunds {
			b.rollups.addRevenue(&r.row, -1)
		}
		return err
	})
}

// endUsers returns the folded end users and aliases as rows.
func (b *eventsBulk) endUsers() ([]readmodel.EndUser, []readmodel.EndUserAlias, error) {
	users, err := b.users.rows()
	if err != nil {
		return nil, nil, err
	}
	aliases := b.users.aliases
	b.users = nil
	sort.Slice(users, func(i, j int) bool {
		if users[i].ProjectID != users[j].ProjectID {
			return users[i].ProjectID < users[j].ProjectID
		}
		return users[i].ExternalID < users[j].ExternalID
	})
	sort.Slice(aliases, func(i, j int) bool {
		if aliases[i].ProjectID != aliases[j].ProjectID {
			return aliases[i].ProjectID < aliases[j].ProjectID
		}
		return aliases[i].AnonymousID < aliases[j].AnonymousID
	})
	return users, aliases, nil
}

func (b *eventsBulk) close() {
	_ = b.stopWriters()
	for _, w := range b.ws {
		w.close()
	}
}
