package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
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
// the rows wait to be written, end users, hourly counts and each user's
// days per event type (daily_event_users, chained) are folded in memory,
// and every other roll-up is computed in SQL at the end; then the indexes
// are built and Apply takes over for the catch-up. The result is the same
// rows Apply would have written (TestBulkReplayBuildsWhatApplyBuilds).

// bulkLoader is implemented by projections that can build their tables
// from the start of the log faster than Apply.
type bulkLoader interface {
	newBulk(ctx context.Context, db *store.DB, schema string, log *slog.Logger, progress io.Writer) (bulkBuild, error)
}

// bulkBuild receives the log in order, then builds what is derived.
type bulkBuild interface {
	// add folds records' values (one partition's records in offset order).
	add(ctx context.Context, values [][]byte) error
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
	Data       struct {
		domain.TrackedData
		EventID string `json:"eventId"`
	} `json:"data"`
}

type bulkUserKey struct{ project, id string }

type bulkUser struct {
	u        readmodel.EndUser
	traits   map[string]json.RawMessage
	versions map[string]string
}

type hourKey struct {
	project, typ string
	hour         int64 // Unix seconds
}

type lateOutcome struct {
	id string
	o  outcome
}

type eventsBulk struct {
	p      *Events
	db     *store.DB
	schema string
	log    *slog.Logger
	w      bulkWriter   // the first of ws
	ws     []bulkWriter // one a connection
	// progress, if set, is told how long each step of finish takes.
	progress io.Writer

	seen    map[uuid.UUID]struct{}
	seenStr map[string]struct{} // ids that are not UUIDs
	buf     []*readmodel.Event
	bufIdx  map[string]*readmodel.Event
	late    []lateOutcome
	lateIdx map[string]bool

	hourly   map[hourKey]int64
	typeDays typeDaysFold

	users     map[bulkUserKey]*bulkUser
	userOrder []bulkUserKey
	aliases   map[bulkUserKey]*readmodel.EndUserAlias

	out  chan []*readmodel.Event
	done chan error
}

func (p *Events) newBulk(ctx context.Context, db *store.DB, schema string, log *slog.Logger, progress io.Writer) (bulkBuild, error) {
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
	b := &eventsBulk{p: p, db: db, schema: schema, log: log, w: ws[0], ws: ws, progress: progress,
		seen: map[uuid.UUID]struct{}{}, seenStr: map[string]struct{}{}, bufIdx: map[string]*readmodel.Event{},
		lateIdx: map[string]bool{}, hourly: map[hourKey]int64{}, typeDays: typeDaysFold{}, users: map[bulkUserKey]*bulkUser{}, aliases: map[bulkUserKey]*readmodel.EndUserAlias{},
		out: make(chan []*readmodel.Event, n), done: make(chan error, n)}
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
	return len(b.seen)+len(b.seenStr)+len(b.users)+len(b.typeDays) >= bulkMaxEvents
}

func (b *eventsBulk) add(ctx context.Context, values [][]byte) error {
	for _, v := range values {
		var env bulkEnvelope
		if !decodeBulkEnvelope(v, &env) {
			env = bulkEnvelope{}
			if err := json.Unmarshal(v, &env); err != nil {
				// Not an event this decoder reads: decode it as the runner
				// does, so the same records are skipped or refused.
				var e domain.Event
				if err := json.Unmarshal(v, &e); err != nil || e.ID == "" || e.Type == "" {
					b.log.Error("skipping undecodable record", "err", err)
					continue
				}
				switch e.Type {
				case domain.EventTracked, domain.UserIdentified, domain.EventRejected:
					if _, err := domain.DecodeData[domain.TrackedData](&e); err != nil {
						return err
					}
				case domain.EventProcessed, domain.EventFailed:
					if _, err := domain.DecodeData[domain.OutcomeData](&e); err != nil {
						return err
					}
				}
				continue
			}
		}
		if env.ID == "" || env.Type == "" {
			b.log.Error("skipping undecodable record", "id", env.ID, "type", env.Type)
			continue
		}
		switch env.Type {
		case domain.EventTracked, domain.UserIdentified, domain.EventRejected:
			if !b.firstSight(env.ID) {
				continue // a re-sent duplicate: the first copy stands
			}
			e := domain.Event{ID: env.ID, Type: env.Type, ProjectID: env.ProjectID, OccurredAt: env.OccurredAt, ReceivedAt: env.ReceivedAt}
			r := newTrackedRow(&e, &env.Data.TrackedData)
			b.buf = append(b.buf, &r.row)
			b.bufIdx[r.row.ID] = &r.row
			if r.counted {
				b.foldUser(r)
				b.hourly[hourKey{r.row.ProjectID, r.row.Type, r.row.OccurredAt.Truncate(time.Hour).Unix()}]++
				b.typeDays.add(&r.row)
			}
			if len(b.buf) >= bulkWindow {
				if err := b.flush(ctx, bulkFlush); err != nil {
					return err
				}
			}
		case domain.EventProcessed, domain.EventFailed:
			o := newOutcome(env.Type, env.Data.Reason, env.OccurredAt)
			id := env.Data.EventID
			if row, ok := b.bufIdx[id]; ok {
				if row.Status == readmodel.StatusPending {
					setOutcome(row, o)
				}
				continue
			}
			// Written already: applied with the others at the end (the
			// first outcome wins, as the status = 'pending' guard does).
			if !b.lateIdx[id] && b.wasSeen(id) {
				b.lateIdx[id] = true
				b.late = append(b.late, lateOutcome{id, o})
			}
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
	}
	b.buf = append(b.buf[:0], b.buf[n:]...)
	select {
	case b.out <- rows:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *eventsBulk) foldUser(r *trackedRow) {
	if r.row.UserID == nil {
		return
	}
	k := bulkUserKey{r.row.ProjectID, *r.row.UserID}
	u, ok := b.users[k]
	if !ok {
		u = &bulkUser{u: readmodel.EndUser{ProjectID: k.project, ExternalID: k.id,
			FirstSeenAt: r.row.OccurredAt, LastSeenAt: r.row.OccurredAt}}
		b.users[k] = u
		b.userOrder = append(b.userOrder, k)
	}
	countSeen(&u.u, r.row.OccurredAt)
	if !r.identify {
		return
	}
	if r.row.AnonymousID != nil {
		ak := bulkUserKey{k.project, *r.row.AnonymousID}
		if a, ok := b.aliases[ak]; !ok || r.row.OccurredAt.Before(a.LinkedAt) {
			b.aliases[ak] = &readmodel.EndUserAlias{ProjectID: k.project, AnonymousID: ak.id, ExternalID: k.id, LinkedAt: r.row.OccurredAt}
		}
	}
	var add map[string]json.RawMessage
	if err := json.Unmarshal(r.traits, &add); err != nil {
		return
	}
	if u.traits == nil {
		u.traits, u.versions = map[string]json.RawMessage{}, map[string]string{}
	}
	version := traitVersion(&r.row)
	for name, value := range add {
		if version > u.versions[name] {
			u.traits[name], u.versions[name] = value, version
		}
	}
}

// traitVersion orders trait writes: last writer wins by event time, then
// id, whatever order (or how many times) identify events arrive.
func traitVersion(r *readmodel.Event) string {
	return r.OccurredAt.UTC().Format("2006-01-02T15:04:05.000000000Z") + "|" + r.ID
}

// bulkTask is one step of finishing a bulk build; it runs once the
// tasks it depends on are done, on whichever connection is free.
type bulkTask struct {
	name string
	deps []string
	// first puts the task ahead of the others: it is on the longest chain.
	first bool
	run   func(ctx context.Context, w bulkWriter) error
}

func (b *eventsBulk) finish(ctx context.Context, checkpoints []readmodel.Checkpoint) error {
	began := time.Now()
	if err := b.flush(ctx, len(b.buf)); err != nil {
		return err
	}
	if err := b.stopWriters(); err != nil {
		return err
	}
	b.seen, b.seenStr, b.bufIdx = nil, nil, nil
	if b.progress != nil {
		fmt.Fprintf(b.progress, "replay events: last rows written in %s\n", time.Since(began).Round(time.Millisecond))
	}

	users, aliases, err := b.endUsers()
	if err != nil {
		return err
	}
	// The events' indexes build side by side; their primary key serves the
	// late outcomes' update, which revenue waits for.
	build, finishEvents, err := b.w.indexPlan(ctx, "events")
	if err != nil {
		return err
	}
	var tasks []bulkTask
	var built []string
	for i, s := range build {
		name := fmt.Sprintf("events index %d", i)
		built = append(built, name)
		tasks = append(tasks, bulkTask{name: name, run: func(ctx context.Context, w bulkWriter) error { return w.exec(ctx, s) }})
	}
	tasks = append(tasks, bulkTask{name: "events", deps: built, run: func(ctx context.Context, w bulkWriter) error {
		for _, s := range finishEvents {
			if err := w.exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}})
	tasks = append(tasks, []bulkTask{
		{name: "late outcomes", deps: []string{"events"}, run: b.applyLate},
		{name: "end_users", run: func(ctx context.Context, w bulkWriter) error {
			if err := w.users(ctx, users); err != nil {
				return err
			}
			return w.indexes(ctx, "end_users")
		}},
		{name: "end_user_aliases", run: func(ctx context.Context, w bulkWriter) error {
			if err := w.aliases(ctx, aliases); err != nil {
				return err
			}
			return w.indexes(ctx, "end_user_aliases")
		}},
	}...)
	hourly := make([]readmodel.EventCountHourly, 0, len(b.hourly))
	for k, n := range b.hourly {
		hourly = append(hourly, readmodel.EventCountHourly{ProjectID: k.project, EventType: k.typ,
			BucketStart: time.Unix(k.hour, 0).UTC(), Count: n})
	}
	b.hourly = nil
	sort.Slice(hourly, func(i, j int) bool {
		a, c := &hourly[i], &hourly[j]
		if a.ProjectID != c.ProjectID {
			return a.ProjectID < c.ProjectID
		}
		if a.EventType != c.EventType {
			return a.EventType < c.EventType
		}
		return a.BucketStart.Before(c.BucketStart)
	})
	tasks = append(tasks, tableTasks("event_counts_hourly", nil, false, func(ctx context.Context, w bulkWriter) error {
		return w.hourlyCounts(ctx, hourly)
	})...)
	typeDays := b.typeDays
	b.typeDays = nil
	tasks = append(tasks, tableTasks("daily_event_users", nil, true, func(ctx context.Context, w bulkWriter) error {
		return w.typeDays(ctx, typeDays.rows(b.db.Dialect == store.SQLite))
	})...)
	for _, r := range b.rollups() {
		tasks = append(tasks, tableTasks(r.table, r.deps, r.first, func(ctx context.Context, w bulkWriter) error {
			if err := w.exec(ctx, r.query); err != nil {
				return fmt.Errorf("replay: computing %s: %w", r.table, err)
			}
			return nil
		})...)
	}
	// On PostgreSQL one connection builds a table's indexes while the
	// other computes another roll-up.
	writers := b.ws
	sort.SliceStable(tasks, func(i, j int) bool { return tasks[i].first && !tasks[j].first })
	if err := b.runTasks(ctx, tasks, writers); err != nil {
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

// tableTasks fills table once deps are done ("<table> loaded", which
// tasks reading its rows wait for), then gives it its indexes.
func tableTasks(table string, deps []string, first bool, fill func(ctx context.Context, w bulkWriter) error) []bulkTask {
	return []bulkTask{
		{name: table + " loaded", deps: deps, first: first, run: fill},
		{name: table, deps: []string{table + " loaded"}, run: func(ctx context.Context, w bulkWriter) error {
			return w.indexes(ctx, table)
		}},
	}
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
				t0 := time.Now()
				err := tasks[i].run(ctx, w)
				if err == nil && b.progress != nil {
					fmt.Fprintf(b.progress, "replay events: %s built in %s\n", tasks[i].name, time.Since(t0).Round(time.Millisecond))
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
		_, err := b.p.applyOutcomes(ctx, tx, b.db, ids, byID)
		return err
	})
}

// endUsers returns the folded end users and aliases as rows.
func (b *eventsBulk) endUsers() ([]readmodel.EndUser, []readmodel.EndUserAlias, error) {
	users := make([]readmodel.EndUser, 0, len(b.userOrder))
	for _, k := range b.userOrder {
		u := b.users[k]
		traits, versions := u.traits, u.versions
		if traits == nil {
			traits, versions = map[string]json.RawMessage{}, map[string]string{}
		}
		var err error
		if u.u.Traits, err = json.Marshal(traits); err != nil { // map keys sort: deterministic bytes
			return nil, nil, err
		}
		if u.u.TraitVersions, err = json.Marshal(versions); err != nil {
			return nil, nil, err
		}
		users = append(users, u.u)
	}
	b.users, b.userOrder = nil, nil
	sort.Slice(users, func(i, j int) bool {
		if users[i].ProjectID != users[j].ProjectID {
			return users[i].ProjectID < users[j].ProjectID
		}
		return users[i].ExternalID < users[j].ExternalID
	})
	aliases := make([]readmodel.EndUserAlias, 0, len(b.aliases))
	for _, a := range b.aliases {
		aliases = append(aliases, *a)
	}
	b.aliases = nil
	sort.Slice(aliases, func(i, j int) bool {
		if aliases[i].ProjectID != aliases[j].ProjectID {
			return aliases[i].ProjectID < aliases[j].ProjectID
		}
		return aliases[i].AnonymousID < aliases[j].AnonymousID
	})
	return users, aliases, nil
}

// rollup is one roll-up table computed by query once the tasks deps name
// are done ("<table> loaded" for a table's rows, "late outcomes" for the
// events' final statuses; the events' rows are there before any task).
// The longest chain (daily event users → daily users → weekly and monthly
// users) is marked first.
type rollup struct {
	table string
	deps  []string
	first bool
	query string
}

// rollups computes the roll-ups (but the hourly counts and the daily
// event users, folded while loading) from the loaded rows, as Apply adds
// them up event by event: counted (not rejected) events only, distinct
// users by user id else anonymous id, revenue from commerce events whose
// processing did not fail. Sets are grouped in their key's order (SQLite
// then appends to its B-tree; PostgreSQL hashes, three times cheaper than
// sorting millions of keys that start with the same project).
func (b *eventsBulk) rollups() []rollup {
	t := func(name string) string {
		if b.schema != "" {
			return b.schema + "." + name
		}
		return name
	}
	var hour, dayOfHour, week, month string
	if b.db.Dialect == store.Postgres {
		hour = "date_bin('1 hour', occurred_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
		dayOfHour = "(bucket_start AT TIME ZONE 'UTC')::date"
		week = "day - (EXTRACT(ISODOW FROM day)::int - 1)"
		month = "day - (EXTRACT(DAY FROM day)::int - 1)"
	} else {
		// Times are stored as bun writes them: 'YYYY-MM-DD HH:MM:SS[.ffffff]+00:00'.
		hour = "substr(occurred_at, 1, 13) || ':00:00+00:00'"
		dayOfHour = "substr(bucket_start, 1, 10) || ' 00:00:00+00:00'"
		week = "date(substr(day, 1, 10), '-6 days', 'weekday 1') || ' 00:00:00+00:00'"
		month = "date(substr(day, 1, 10), 'start of month') || ' 00:00:00+00:00'"
	}
	return []rollup{
		{"daily_users", []string{"daily_event_users loaded"}, true, "INSERT INTO " + t("daily_users") + " (project_id, day, distinct_id)" +
			" SELECT project_id, day, distinct_id FROM " + t("daily_event_users") + " GROUP BY 1, 2, 3"},
		{"event_counts_daily", []string{"event_counts_hourly loaded"}, false, "INSERT INTO " + t("event_counts_daily") + " (project_id, event_type, day, count)" +
			" SELECT project_id, event_type, " + dayOfHour + ", SUM(count) FROM " + t("event_counts_hourly") + " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"},
		{"weekly_users", []string{"daily_users loaded"}, true, "INSERT INTO " + t("weekly_users") + " (project_id, distinct_id, week)" +
			" SELECT project_id, distinct_id, " + week + " FROM " + t("daily_users") + " GROUP BY 1, 2, 3"},
		{"monthly_users", []string{"daily_users loaded"}, true, "INSERT INTO " + t("monthly_users") + " (project_id, distinct_id, month)" +
			" SELECT project_id, distinct_id, " + month + " FROM " + t("daily_users") + " GROUP BY 1, 2, 3"},
		{"revenue_hourly", []string{"late outcomes"}, false, "INSERT INTO " + t("revenue_hourly") + " (project_id, currency, bucket_start, amount, count)" +
			" SELECT project_id, currency, " + hour + ", SUM(amount), COUNT(*) FROM " + t("events") +
			" WHERE NOT rejected AND amount IS NOT NULL AND currency IS NOT NULL AND status <> 'failed' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"},
		{"active_user_counts", []string{"daily_users loaded", "weekly_users loaded", "monthly_users loaded"}, false, "INSERT INTO " + t("active_user_counts") + " (project_id, period, period_start, users)" +
			" SELECT project_id, 'day', day, COUNT(*) FROM " + t("daily_users") + " GROUP BY 1, 3" +
			" UNION ALL SELECT project_id, 'week', week, COUNT(*) FROM " + t("weekly_users") + " GROUP BY 1, 3" +
			" UNION ALL SELECT project_id, 'month', month, COUNT(*) FROM " + t("monthly_users") + " GROUP BY 1, 3"},
	}
}

func (b *eventsBulk) close() {
	_ = b.stopWriters()
	for _, w := range b.ws {
		w.close()
	}
}
