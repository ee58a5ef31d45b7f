package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// RowsConfig is the live read model's benchmark: Events tracked events of
// Users users and Types types over one day, applied Batch at a time.
type RowsConfig struct {
	Events, Users, Types, Batch int
	Out                         io.Writer
}

// RunRows measures what the events projection costs live, beside two
// ceilings on the same machine in the same run: the rows it writes for
// those events inserted raw into today's SQLite schema (prepared
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
	fmt.Fprintf(c.Out, "%d events, %d users, %d types, %d per transaction, SQLite\n", c.Events, c.Users, c.Types, c.Batch)

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
	narrow, err := timeRows(ctx, c, func() (*store.DB, error) {
		db, err := store.Open(ctx, filepath.Join(dir, "narrow.db"))
		if err != nil {
			return nil, err
		}
		for _, q := range narrowSchema {
			if _, err := db.ExecContext(ctx, q); err != nil {
				db.Close()
				return nil, fmt.Errorf("%s: %w", q, err)
			}
		}
		return db, nil
	}, rawRows(narrowRows), evs)
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
	began := time.Now()
	for i := 0; i < len(evs); i += c.Batch {
		if err := apply(ctx, db, evs[i:min(i+c.Batch, len(evs))]); err != nil {
			return 0, err
		}
	}
	return float64(len(evs)) / time.Since(began).Seconds(), nil
}

// rowStatements is one schema's statements for the rows of one event.
type rowStatements struct {
	event, user, dayUser, weekUser, monthUser, typeDay string
	// args builds each statement's arguments.
	args func(e *domain.Event, d *domain.TrackedData) rowArgs
}

type rowArgs struct{ event, user, dayUser, weekUser, monthUser, typeDay []any }

// rawRows inserts what the projection writes per event with prepared
// statements: the event, and per distinct user (and type) in the batch its
// end user and user sets, as the projection folds them.
func rawRows(s rowStatements) func(context.Context, *store.DB, []domain.Event) error {
	return func(ctx context.Context, db *store.DB, batch []domain.Event) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // after a commit it does nothing
		stmts := map[string]*sql.Stmt{}
		for _, q := range []string{s.event, s.user, s.dayUser, s.weekUser, s.monthUser, s.typeDay} {
			if stmts[q], err = tx.PrepareContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		users, typeDays := map[string]bool{}, map[[2]string]bool{}
		for i := range batch {
			d, _ := domain.DecodeData[domain.TrackedData](&batch[i])
			a := s.args(&batch[i], &d)
			run := func(q string, args []any) error {
				_, err := stmts[q].ExecContext(ctx, args...)
				return err
			}
			if err := run(s.event, a.event); err != nil {
				return err
			}
			if !users[d.UserID] {
				users[d.UserID] = true
				for _, st := range []struct {
					q    string
					args []any
				}{{s.user, a.user}, {s.dayUser, a.dayUser}, {s.weekUser, a.weekUser}, {s.monthUser, a.monthUser}} {
					if err := run(st.q, st.args); err != nil {
						return err
					}
				}
			}
			if k := [2]string{d.UserID, d.Event}; !typeDays[k] {
				typeDays[k] = true
				if err := run(s.typeDay, a.typeDay); err != nil {
					return err
				}
			}
		}
		return tx.Commit()
	}
}

// wideRows are today's schema's rows (store/migrations/sqlite).
var wideRows = rowStatements{
	event: `INSERT INTO events (id, project_id, type, user_id, properties, message_id, key_id, status, received_at, occurred_at, processed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
	user: `INSERT INTO end_users (project_id, external_id, first_seen_at, last_seen_at, event_count) VALUES (?, ?, ?, ?, 1)
		ON CONFLICT (project_id, external_id) DO UPDATE SET last_seen_at = max(end_users.last_seen_at, EXCLUDED.last_seen_at),
		event_count = end_users.event_count + 1`,
	dayUser:   `INSERT INTO daily_users (project_id, day, distinct_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
	weekUser:  `INSERT INTO weekly_users (project_id, distinct_id, week) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
	monthUser: `INSERT INTO monthly_users (project_id, distinct_id, month) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
	typeDay: `INSERT INTO daily_event_users (project_id, event_type, distinct_id, day, first_at, last_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (project_id, event_type, distinct_id, day) DO UPDATE SET last_at = EXCLUDED.last_at`,
	args: func(e *domain.Event, d *domain.TrackedData) rowArgs {
		at := e.OccurredAt.UTC()
		day := at.Truncate(24 * time.Hour)
		return rowArgs{
			event:     []any{e.ID, e.ProjectID, d.Event, d.UserID, string(d.Properties), d.MessageID, d.KeyID, readmodel.StatusProcessed, at, at, at},
			user:      []any{e.ProjectID, d.UserID, at, at},
			dayUser:   []any{e.ProjectID, day, d.UserID},
			weekUser:  []any{e.ProjectID, d.UserID, day},
			monthUser: []any{e.ProjectID, d.UserID, day},
			typeDay:   []any{e.ProjectID, d.Event, d.UserID, day, at.UnixMicro(), at.UnixMicro()},
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
var narrowRows = rowStatements{
	event: `INSERT INTO events (id, project, type, user, properties, message_id, key, status, received_at, occurred_at, processed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
	user: `INSERT INTO end_users (project, user, first_seen_at, last_seen_at, event_count) VALUES (?, ?, ?, ?, 1)
		ON CONFLICT (project, user) DO UPDATE SET last_seen_at = max(end_users.last_seen_at, EXCLUDED.last_seen_at),
		event_count = end_users.event_count + 1`,
	dayUser:   `INSERT INTO daily_users (project, day, user) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
	weekUser:  `INSERT INTO weekly_users (project, user, week) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
	monthUser: `INSERT INTO monthly_users (project, user, month) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
	typeDay: `INSERT INTO daily_event_users (project, type, user, day, first_at, last_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (project, type, user, day) DO UPDATE SET last_at = EXCLUDED.last_at`,
	args: func(e *domain.Event, d *domain.TrackedData) rowArgs {
		at := e.OccurredAt.UnixMicro()
		day := at / int64(24*time.Hour/time.Microsecond)
		var user, typ int64
		fmt.Sscanf(d.UserID, "user-%d", &user) //nolint:errcheck // synthetic names
		fmt.Sscanf(d.Event, "type_%d", &typ)   //nolint:errcheck // synthetic names
		id := uuid.MustParse(e.ID)
		return rowArgs{
			event:     []any{id[:], 1, typ, user, string(d.Properties), d.MessageID, 1, 1, at, at, at},
			user:      []any{1, user, at, at},
			dayUser:   []any{1, day, user},
			weekUser:  []any{1, user, day},
			monthUser: []any{1, user, day},
			typeDay:   []any{1, typ, user, day, at, at},
		}
	},
}
