package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// narrowing is one way of storing the hot tables' keys more narrowly; the
// tables, indexes and rows stay those of the schema before project keys
// (store/migrations/sqlite up to 20261204000300), only the columns' types
// change, so each narrowing's gain can be read alone. The project as an
// integer is what 20261207000100 adopted.
type narrowing struct {
	name string
	// blobID stores the event id as 16 bytes instead of 36 characters.
	blobID bool
	// intProject stores a surrogate integer for the project.
	intProject bool
	// blobProject stores the project's UUID as its 16 bytes: narrower
	// than its 36 characters, and needing no dictionary.
	blobProject bool
	// intKeys stores surrogate integers for the project, event type, user
	// and key.
	intKeys bool
	// intTimes stores times as int64 µs since the epoch instead of text.
	intTimes bool
}

var narrowings = []narrowing{
	{name: "text project UUID (before 12-07)"},
	{name: "event id as 16 bytes", blobID: true},
	{name: "times as int64 µs", intTimes: true},
	{name: "project as an integer", intProject: true},
	{name: "project as 16 bytes", blobProject: true},
	{name: "project as 16 bytes + times", blobProject: true, intTimes: true},
	{name: "project + times", intProject: true, intTimes: true},
	{name: "project, type, user, key as integers", intKeys: true},
	{name: "those + times", intKeys: true, intTimes: true},
	{name: "those + event id", intKeys: true, intTimes: true, blobID: true},
}

// schema is today's tables with n's column types.
func (n narrowing) schema() []string {
	id, project, key, at := "text", "text", "text", "text"
	if n.blobID {
		id = "blob"
	}
	if n.intProject || n.intKeys {
		project = "integer"
	}
	if n.blobProject {
		project = "blob"
	}
	if n.intKeys {
		key = "integer"
	}
	if n.intTimes {
		at = "integer"
	}
	r := strings.NewReplacer("$ID", id, "$PROJECT", project, "$KEY", key, "$AT", at)
	ddl := []string{
		`CREATE TABLE events (id $ID PRIMARY KEY, project_id $PROJECT NOT NULL, type $KEY NOT NULL, user_id $KEY,
			anonymous_id $KEY, properties text NOT NULL, message_id text, key_id $KEY NOT NULL, status text NOT NULL,
			received_at $AT NOT NULL, occurred_at $AT NOT NULL, processed_at $AT, rejected integer NOT NULL DEFAULT 0)`,
		`CREATE INDEX events_project_time_idx ON events (project_id, occurred_at DESC, id DESC)`,
		`CREATE INDEX events_project_type_time_idx ON events (project_id, type, occurred_at DESC, id DESC, user_id, anonymous_id, rejected)`,
		`CREATE INDEX events_project_user_time_idx ON events (project_id, user_id, occurred_at DESC, id DESC)`,
		`CREATE TABLE end_users (project_id $PROJECT NOT NULL, external_id $KEY NOT NULL, traits text NOT NULL DEFAULT '{}',
			first_seen_at $AT NOT NULL, last_seen_at $AT NOT NULL, event_count integer NOT NULL,
			PRIMARY KEY (project_id, external_id))`,
		`CREATE INDEX end_users_project_last_seen_idx ON end_users (project_id, last_seen_at DESC, external_id)`,
		`CREATE INDEX end_users_project_first_seen_idx ON end_users (project_id, first_seen_at)`,
		`CREATE TABLE daily_users (project_id $PROJECT NOT NULL, day $AT NOT NULL, distinct_id $KEY NOT NULL,
			PRIMARY KEY (project_id, day, distinct_id))`,
		`CREATE TABLE weekly_users (project_id $PROJECT NOT NULL, distinct_id $KEY NOT NULL, week $AT NOT NULL,
			PRIMARY KEY (project_id, distinct_id, week)) WITHOUT ROWID`,
		`CREATE TABLE monthly_users (project_id $PROJECT NOT NULL, distinct_id $KEY NOT NULL, month $AT NOT NULL,
			PRIMARY KEY (project_id, distinct_id, month)) WITHOUT ROWID`,
		`CREATE TABLE daily_event_users (project_id $PROJECT NOT NULL, event_type $KEY NOT NULL, distinct_id $KEY NOT NULL,
			day $AT NOT NULL, first_at integer NOT NULL, last_at integer NOT NULL, prev_last_at integer,
			PRIMARY KEY (project_id, event_type, distinct_id, day)) WITHOUT ROWID`,
		`CREATE INDEX daily_event_users_range_idx ON daily_event_users (project_id, event_type, day, last_at, first_at, prev_last_at)`,
	}
	for i := range ddl {
		ddl[i] = r.Replace(ddl[i])
	}
	return ddl
}

// rows are the rows rawRows writes in n's schema. Surrogate integers stand
// for what a dictionary would hand out (parsed from the synthetic names).
func (n narrowing) rows() rowSchema {
	s := wideRows
	s.args = func(e *domain.Event, d *domain.TrackedData) rowArgs {
		at := e.OccurredAt.UTC()
		// Text, as bun wrote a time before store's SQLite dialect wrote
		// int64 µs (migration 20261207000300).
		var when, day any = at.Format(textTime), at.Truncate(24 * time.Hour).Format(textTime)
		if n.intTimes {
			when, day = at.UnixMicro(), at.Truncate(24*time.Hour).UnixMicro()
		}
		var id, project, typ, user, key any = e.ID, e.ProjectID, d.Event, d.UserID, d.KeyID
		if n.blobID {
			u := uuid.MustParse(e.ID)
			id = u[:]
		}
		if n.intProject || n.intKeys {
			project = 1
		}
		if n.blobProject {
			u := uuid.MustParse(e.ProjectID)
			project = u[:]
		}
		if n.intKeys {
			var u, t int64
			fmt.Sscanf(d.UserID, "user-%d", &u) //nolint:errcheck // synthetic names
			fmt.Sscanf(d.Event, "type_%d", &t)  //nolint:errcheck // synthetic names
			typ, user, key = t, u, 1
		}
		return rowArgs{
			event:     []any{id, project, typ, user, string(d.Properties), d.MessageID, key, readmodel.StatusProcessed, when, when, when},
			user:      []any{project, user, when, when, 1},
			dayUser:   []any{project, day, user},
			weekUser:  []any{project, user, day},
			monthUser: []any{project, user, day},
			typeDay:   []any{project, typ, user, day, at.UnixMicro(), at.UnixMicro()},
		}
	}
	return s
}

// textTime is the text a SQLite time was before it was int64 µs.
const textTime = "2006-01-02 15:04:05.999999-07:00"

// runNarrowings writes c's rows raw into each narrowing's schema, rounds
// times over, and prints events/s beside today's types and the file size.
func runNarrowings(ctx context.Context, c RowsConfig, dir string, evs []domain.Event) error {
	fmt.Fprintf(c.Out, "raw rows in today's tables, one narrowing at a time (%d rounds, interleaved)\n", c.Rounds)
	rates := make([][]float64, len(narrowings))
	sizes := make([]int64, len(narrowings))
	for round := range c.Rounds {
		for i, n := range narrowings {
			path := filepath.Join(dir, fmt.Sprintf("narrowing-%d-%d.db", round, i))
			rate, err := timeRows(ctx, c, openWith(ctx, path, n.schema()), rawRows(n.rows()), evs)
			if err != nil {
				return fmt.Errorf("narrowing %q: %w", n.name, err)
			}
			st, err := os.Stat(path) // closed: the WAL is in the file
			if err != nil {
				return err
			}
			rates[i], sizes[i] = append(rates[i], rate), st.Size()
		}
	}
	printNarrowings(c, narrowings, rates, sizes)
	return nil
}

// openWith opens a fresh database at dsn and creates ddl in it.
func openWith(ctx context.Context, dsn string, ddl []string) func() (*store.DB, error) {
	return func() (*store.DB, error) {
		db, err := store.Open(ctx, dsn)
		if err != nil {
			return nil, err
		}
		for _, q := range ddl {
			if _, err := db.ExecContext(ctx, q); err != nil {
				db.Close()
				return nil, fmt.Errorf("%s: %w", q, err)
			}
		}
		return db, nil
	}
}

// printNarrowings prints each narrowing's rates, as a ratio to the first's
// in the same round, and the size of its tables.
func printNarrowings(c RowsConfig, ns []narrowing, rates [][]float64, sizes []int64) {
	for i, n := range ns {
		fmt.Fprintf(c.Out, "%-40s", n.name)
		for r, rate := range rates[i] {
			fmt.Fprintf(c.Out, " %7.0f (%.2f×)", rate, rate/rates[0][r])
		}
		fmt.Fprintf(c.Out, "   %4d MiB\n", sizes[i]>>20)
	}
}
