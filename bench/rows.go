package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// RowsConfig is the live read model's benchmark: Events tracked events of
// Users users and Types types over one day, applied Batch at a time.
type RowsConfig struct {
	Events, Users, Types, Batch int
	// Narrowings, when set, measures instead each way of narrowing the
	// hot tables' keys alone, Rounds times (see narrowings).
	Narrowings bool
	Rounds     int
	// Database, with Narrowings, is a PostgreSQL URL to measure them on
	// instead of SQLite (runNarrowingsPG).
	Database string
	Out      io.Writer
}

// RunRows measures what the events projection costs live, beside two
// ceilings on the same machine in the same run: the rows it writes for
// those events written raw into today's SQLite schema (rawRows: multi-row
// statements, one transaction per batch, nothing else), and the same rows
// in a candidate schema with narrow keys (integer surrogate ids for the
// project, type, user and key, int64 microsecond times). The first ratio
// is what the projection's own code costs; the second what the schema
// does.
func RunRows(ctx context.Context, c RowsConfig) error {
	dir, err := os.MkdirTemp("", "boost-bench-rows")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	evs := syntheticBatch(c)
	if c.Database != "" {
		if !c.Narrowings {
			return fmt.Errorf("bench rows: --database is for --narrowings")
		}
		fmt.Fprintf(c.Out, "%d events, %d users, %d types, %d per transaction, PostgreSQL\n", c.Events, c.Users, c.Types, c.Batch)
		return runNarrowingsPG(ctx, c, evs)
	}
	fmt.Fprintf(c.Out, "%d events, %d users, %d types, %d per transaction, SQLite\n", c.Events, c.Users, c.Types, c.Batch)
	if c.Narrowings {
		return runNarrowings(ctx, c, dir, evs)
	}

	live, err := timeRows(ctx, c, func() (*store.DB, error) { return openReadModel(ctx, "", filepath.Join(dir, "live")) },
		func(ctx context.Context, db *store.DB, batch []domain.Event) error {
			p := projections.NewEvents("bench.events")
			return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return p.Apply(ctx, tx, db, batch) })
		}, evs)
	if err != nil {
		return fmt.Errorf("live apply: %w", err)
	}
	wide, err := timeRows(ctx, c, func() (*store.DB, error) { return openReadModel(ctx, "", filepath.Join(dir, "wide")) },
		rawRows(wideRows), evs)
	if err != nil {
		return fmt.Errorf("ceiling, today's schema: %w", err)
	}
	narrow, err := timeRows(ctx, c, openWith(ctx, filepath.Join(dir, "narrow.db"), narrowSchema), rawRows(narrowRows), evs)
	if err != nil {
		return fmt.Errorf("ceiling, narrow keys: %w", err)
	}
	fmt.Fprintf(c.Out, "%-44s %9.0f events/s\n", "events projection, live Apply", live)
	fmt.Fprintf(c.Out, "%-44s %9.0f events/s   live ÷ this %.2f×\n", "ceiling: its rows, raw, today's schema", wide, live/wide)
	fmt.Fprintf(c.Out, "%-44s %9.0f events/s   live ÷ this %.2f×\n", "ceiling: its rows, raw, narrow keys", narrow, live/narrow)
	return nil
}

// syntheticBatch is c's events: settled EventTracked, one project, users
// and types at random, times over one day in order.
func syntheticBatch(c RowsConfig) []domain.Event {
	rng := rand.New(rand.NewPCG(7, 11))
	project, key := domain.NewID(), domain.NewID()
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	step := 24 * time.Hour / time.Duration(c.Events)
	evs := make([]domain.Event, c.Events)
	for i := range evs {
		at := day.Add(time.Duration(i) * step)
		d := domain.TrackedData{Event: fmt.Sprintf("type_%d", rng.IntN(c.Types)), UserID: fmt.Sprintf("user-%d", rng.IntN(c.Users)),
			Properties: json.RawMessage(`{"path":"/products/123","ref":"campaign","n":12}`), MessageID: fmt.Sprintf("m-%d", i),
			ReceivedAt: at, KeyID: key, KeyType: domain.KeySecret, Outcome: domain.OutcomeProcessed}
		e, _ := domain.NewEventWithID(domain.NewID(), domain.EventTracked, domain.Meta{AggregateType: domain.AggregateEvent,
			AggregateID: "", ProjectID: project, OccurredAt: at}, d)
		e.ReceivedAt = at
		evs[i] = e
	}
	return evs
}

// timeRows applies evs in batches to a fresh database and returns events/s.
func timeRows(ctx context.Context, c RowsConfig, open func() (*store.DB, error),
	apply func(context.Context, *store.DB, []domain.Event) error, evs []domain.Event,
) (float64, error) {
	db, err := open()
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if err := oneWriter(ctx, db); err != nil {
		return 0, err
	}
	began := time.Now()
	for i := 0; i < len(evs); i += c.Batch {
		if err := apply(ctx, db, evs[i:min(i+c.Batch, len(evs))]); err != nil {
			return 0, err
		}
	}
	return float64(len(evs)) / time.Since(began).Seconds(), nil
}

// oneWriter leaves db one connection, with a writer's page cache, as a
// projection runner keeps one: a ceiling writes as the projection does.
func oneWriter(ctx context.Context, db *store.DB) error {
	db.SetMaxOpenConns(1)
	w, err := db.TakeWriter(ctx)
	if err != nil {
		return err
	}
	return w.Close() // back to the pool, cache and all
}

// rowSchema is one schema's tables for the rows of one event: the events
// row, the end user, the day, week and month sets and the type-day.
type rowSchema struct {
	event, dayUser, weekUser, monthUser tableRows
	// user and typeDay are inserted the first time and updated after
	// (key columns first in cols, the rest set).
	user, typeDay tableRows
	// args builds each table's row.
	args func(e *domain.Event, d *domain.TrackedData) rowArgs
}

// tableRows is a table's name, its columns, and how many of the first
// ones are its key.
type tableRows struct {
	table string
	cols  []string
	key   int
}

type rowArgs struct{ event, user, dayUser, weekUser, monthUser, typeDay []any }

// rawRows writes what the projection writes per batch, the cheapest way
// SQLite offers and without any of the projection's work: multi-row
// INSERT OR FAIL (no statement journal, see store.Insert) of the events
// and of each distinct user's and type-day's rows, and UPDATE OR FAIL of
// those it wrote before. It knows which those are from memory, where the
// projection reads them back. Users' counts are not folded: the row
// written is the event's.
func rawRows(s rowSchema) func(context.Context, *store.DB, []domain.Event) error {
	written := map[string]bool{}
	return func(ctx context.Context, db *store.DB, batch []domain.Event) error {
		w := rawBatch{}
		seen := map[string]bool{}
		for i := range batch {
			d, _ := domain.DecodeData[domain.TrackedData](&batch[i])
			a := s.args(&batch[i], &d)
			w.add(s.event, a.event, false)
			if !seen[d.UserID] {
				seen[d.UserID] = true
				w.add(s.user, a.user, written["u"+d.UserID])
				written["u"+d.UserID] = true
				w.add(s.dayUser, a.dayUser, false)
				w.add(s.weekUser, a.weekUser, false)
				w.add(s.monthUser, a.monthUser, false)
			}
			if k := "t" + d.UserID + "\x00" + d.Event; !seen[k] {
				seen[k] = true
				w.add(s.typeDay, a.typeDay, written[k])
				written[k] = true
			}
		}
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return w.write(ctx, tx) })
	}
}

// rawBatch is a batch's rows by table, in the order tables first came.
type rawBatch struct {
	order  []tableRows
	insert map[string][][]any
	update map[string][][]any
}

func (w *rawBatch) add(t tableRows, row []any, update bool) {
	if w.insert == nil {
		w.insert, w.update = map[string][][]any{}, map[string][][]any{}
	}
	if _, ok := w.insert[t.table]; !ok {
		w.order = append(w.order, t)
		w.insert[t.table] = nil
	}
	if update {
		w.update[t.table] = append(w.update[t.table], row)
	} else {
		w.insert[t.table] = append(w.insert[t.table], row)
	}
}

func (w *rawBatch) write(ctx context.Context, tx bun.Tx) error {
	if tx.Dialect().Name() == dialect.PG {
		return w.writePG(ctx, tx)
	}
	for _, t := range w.order {
		for chunk := range slices.Chunk(w.update[t.table], 500) {
			if err := store.UpdateRows(ctx, tx, t.table, t.cols[:t.key], t.cols[t.key:], chunk); err != nil {
				return err
			}
		}
		for chunk := range slices.Chunk(w.insert[t.table], 500) {
			if err := store.InsertRows(ctx, tx, t.table, t.cols, chunk); err != nil {
				return err
			}
		}
	}
	return nil
}

// wideRows are today's schema's rows (store/migrations/sqlite).
var wideRows = rowSchema{
	event: tableRows{table: "events", cols: []string{"id", "project_id", "type", "user_id", "properties", "message_id", "key_id",
		"status", "received_at", "occurred_at", "processed_at"}},
	user:      tableRows{table: "end_users", cols: []string{"project_id", "external_id", "first_seen_at", "last_seen_at", "event_count"}, key: 2},
	dayUser:   tableRows{table: "daily_users", cols: []string{"project_id", "day", "distinct_id"}},
	weekUser:  tableRows{table: "weekly_users", cols: []string{"project_id", "distinct_id", "week"}},
	monthUser: tableRows{table: "monthly_users", cols: []string{"project_id", "distinct_id", "month"}},
	typeDay: tableRows{table: "daily_event_users", cols: []string{"project_id", "event_type", "distinct_id", "day", "first_at",
		"last_at"}, key: 4},
	args: func(e *domain.Event, d *domain.TrackedData) rowArgs {
		at := e.OccurredAt.UTC()
		day := at.Truncate(24 * time.Hour)
		project := "1" // the one project's key (store.ProjectKeys)
		return rowArgs{
			event:     []any{e.ID, project, d.Event, d.UserID, string(d.Properties), d.MessageID, d.KeyID, readmodel.StatusProcessed, at, at, at},
			user:      []any{project, d.UserID, at, at, 1},
			dayUser:   []any{project, day, d.UserID},
			weekUser:  []any{project, d.UserID, day},
			monthUser: []any{project, d.UserID, day},
			typeDay:   []any{project, d.Event, d.UserID, day, at.UnixMicro(), at.UnixMicro()},
		}
	},
}

// narrowSchema is the candidate: the same tables and indexes, with
// integer surrogate keys and int64 µs times (the event keeps its UUID, as
// 16 bytes, for lookups by id).
var narrowSchema = []string{
	`CREATE TABLE events (id blob NOT NULL, project integer NOT NULL, type integer NOT NULL, user integer,
		anonymous integer, properties text NOT NULL, message_id text, key integer NOT NULL, status integer NOT NULL,
		received_at integer NOT NULL, occurred_at integer NOT NULL, processed_at integer, rejected integer NOT NULL DEFAULT 0)`,
	`CREATE UNIQUE INDEX events_id ON events (id)`,
	`CREATE INDEX events_time ON events (project, occurred_at DESC)`,
	`CREATE INDEX events_type_time ON events (project, type, occurred_at DESC, user, anonymous, rejected)`,
	`CREATE INDEX events_user_time ON events (project, user, occurred_at DESC)`,
	`CREATE TABLE end_users (project integer NOT NULL, user integer NOT NULL, traits text NOT NULL DEFAULT '{}',
		first_seen_at integer NOT NULL, last_seen_at integer NOT NULL, event_count integer NOT NULL,
		PRIMARY KEY (project, user)) WITHOUT ROWID`,
	`CREATE INDEX end_users_last_seen ON end_users (project, last_seen_at DESC, user)`,
	`CREATE INDEX end_users_first_seen ON end_users (project, first_seen_at)`,
	`CREATE TABLE daily_users (project integer, day integer, user integer, PRIMARY KEY (project, day, user)) WITHOUT ROWID`,
	`CREATE TABLE weekly_users (project integer, user integer, week integer, PRIMARY KEY (project, user, week)) WITHOUT ROWID`,
	`CREATE TABLE monthly_users (project integer, user integer, month integer, PRIMARY KEY (project, user, month)) WITHOUT ROWID`,
	`CREATE TABLE daily_event_users (project integer, type integer, user integer, day integer, first_at integer,
		last_at integer, prev_last_at integer, PRIMARY KEY (project, type, user, day)) WITHOUT ROWID`,
	`CREATE INDEX daily_event_users_range ON daily_event_users (project, type, day, last_at, first_at, prev_last_at)`,
}

// narrowRows are the candidate's rows. The surrogate ids stand for what a
// dictionary would hand out (here parsed from the synthetic names).
var narrowRows = rowSchema{
	event: tableRows{table: "events", cols: []string{"id", "project", "type", "user", "properties", "message_id", "key", "status",
		"received_at", "occurred_at", "processed_at"}},
	user:      tableRows{table: "end_users", cols: []string{"project", "user", "first_seen_at", "last_seen_at", "event_count"}, key: 2},
	dayUser:   tableRows{table: "daily_users", cols: []string{"project", "day", "user"}},
	weekUser:  tableRows{table: "weekly_users", cols: []string{"project", "user", "week"}},
	monthUser: tableRows{table: "monthly_users", cols: []string{"project", "user", "month"}},
	typeDay:   tableRows{table: "daily_event_users", cols: []string{"project", "type", "user", "day", "first_at", "last_at"}, key: 4},
	args: func(e *domain.Event, d *domain.TrackedData) rowArgs {
		at := e.OccurredAt.UnixMicro()
		day := at / int64(24*time.Hour/time.Microsecond)
		var user, typ int64
		fmt.Sscanf(d.UserID, "user-%d", &user) //nolint:errcheck // synthetic names
		fmt.Sscanf(d.Event, "type_%d", &typ)   //nolint:errcheck // synthetic names
		id := uuid.MustParse(e.ID)
		return rowArgs{
			event:     []any{id[:], 1, typ, user, string(d.Properties), d.MessageID, 1, 1, at, at, at},
			user:      []any{1, user, at, at, 1},
			dayUser:   []any{1, day, user},
			weekUser:  []any{1, user, day},
			monthUser: []any{1, user, day},
			typeDay:   []any{1, typ, user, day, at, at},
		}
	},
}
