package bench

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/store"
)

// pgSchema is n's tables on PostgreSQL: the types before the project was
// keyed (uuid ids, byte-ordered text keys, timestamptz times, date days)
// with n's narrowings; "project as an integer" is today's. A UUID is 16 bytes there already, so the narrowings that
// store one as 16 bytes have no PostgreSQL counterpart (pgNarrowings).
func (n narrowing) pgSchema() []string {
	project, key, keyID, at, day := "uuid", `text COLLATE "C"`, "uuid", "timestamptz", "date"
	if n.intProject || n.intKeys {
		project = "integer"
	}
	if n.intKeys {
		key, keyID = "integer", "integer"
	}
	if n.intTimes {
		at, day = "bigint", "bigint"
	}
	r := strings.NewReplacer("$PROJECT", project, "$KEYID", keyID, "$KEY", key, "$AT", at, "$DAY", day)
	ddl := []string{
		`CREATE TABLE events (id uuid PRIMARY KEY, project_id $PROJECT NOT NULL, type $KEY NOT NULL, user_id $KEY,
			anonymous_id $KEY, properties jsonb NOT NULL, message_id text, key_id $KEYID NOT NULL, status text NOT NULL,
			received_at $AT NOT NULL, occurred_at $AT NOT NULL, processed_at $AT, rejected boolean NOT NULL DEFAULT false)`,
		`CREATE INDEX events_project_time_idx ON events (project_id, occurred_at DESC, id DESC)`,
		`CREATE INDEX events_project_type_time_idx ON events (project_id, type, occurred_at DESC, id DESC) INCLUDE (user_id, anonymous_id, rejected)`,
		`CREATE INDEX events_project_user_time_idx ON events (project_id, user_id, occurred_at DESC, id DESC)`,
		`CREATE TABLE end_users (project_id $PROJECT NOT NULL, external_id $KEY NOT NULL, traits jsonb NOT NULL DEFAULT '{}',
			first_seen_at $AT NOT NULL, last_seen_at $AT NOT NULL, event_count bigint NOT NULL,
			PRIMARY KEY (project_id, external_id))`,
		`CREATE INDEX end_users_project_last_seen_idx ON end_users (project_id, last_seen_at DESC, external_id)`,
		`CREATE INDEX end_users_project_first_seen_idx ON end_users (project_id, first_seen_at)`,
		`CREATE TABLE daily_users (project_id $PROJECT NOT NULL, day $DAY NOT NULL, distinct_id $KEY NOT NULL,
			PRIMARY KEY (project_id, day, distinct_id))`,
		`CREATE TABLE weekly_users (project_id $PROJECT NOT NULL, distinct_id $KEY NOT NULL, week $DAY NOT NULL,
			PRIMARY KEY (project_id, distinct_id, week))`,
		`CREATE TABLE monthly_users (project_id $PROJECT NOT NULL, distinct_id $KEY NOT NULL, month $DAY NOT NULL,
			PRIMARY KEY (project_id, distinct_id, month))`,
		`CREATE TABLE daily_event_users (project_id $PROJECT NOT NULL, event_type $KEY NOT NULL, distinct_id $KEY NOT NULL,
			day $DAY NOT NULL, first_at bigint NOT NULL, last_at bigint NOT NULL, prev_last_at bigint,
			PRIMARY KEY (project_id, event_type, distinct_id, day))`,
		`CREATE INDEX daily_event_users_range_idx ON daily_event_users (project_id, event_type, day, last_at, first_at, prev_last_at)`,
	}
	for i := range ddl {
		ddl[i] = r.Replace(ddl[i])
	}
	return ddl
}

// pgNarrowings are the narrowings that change a PostgreSQL column's type;
// the first is the types before the project was keyed.
func pgNarrowings() []narrowing {
	ns := slices.DeleteFunc(slices.Clone(narrowings), func(n narrowing) bool { return n.blobID || n.blobProject })
	ns[0].name = "uuid project (before)"
	return ns
}

// runNarrowingsPG is runNarrowings on the PostgreSQL database at c.Database:
// each run gets a schema of its own, dropped after it.
func runNarrowingsPG(ctx context.Context, c RowsConfig, evs []domain.Event) error {
	admin, err := store.Open(ctx, c.Database)
	if err != nil {
		return err
	}
	defer admin.Close()
	ns := pgNarrowings()
	fmt.Fprintf(c.Out, "raw rows in PostgreSQL tables, one narrowing at a time (%d rounds, interleaved)\n", c.Rounds)
	rates := make([][]float64, len(ns))
	sizes := make([]int64, len(ns))
	for round := range c.Rounds {
		for i, n := range ns {
			schema := fmt.Sprintf("bench_narrowing_%d_%d", round, i)
			if _, err := admin.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE; CREATE SCHEMA "+schema); err != nil {
				return err
			}
			dsn, err := withSearchPath(c.Database, schema)
			if err != nil {
				return err
			}
			rate, err := timeRows(ctx, c, openWith(ctx, dsn, n.pgSchema()), rawRows(n.rows()), evs)
			if err != nil {
				return fmt.Errorf("narrowing %q: %w", n.name, err)
			}
			if err := admin.NewRaw("SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "+
				"JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = ? AND c.relkind = 'r'", schema).
				Scan(ctx, &sizes[i]); err != nil {
				return err
			}
			if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				return err
			}
			rates[i] = append(rates[i], rate)
		}
	}
	printNarrowings(c, ns, rates, sizes)
	return nil
}

// withSearchPath is dsn with its connections' search_path set to schema.
func withSearchPath(dsn, schema string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("bench: database URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// writePG writes the batch as upserts: PostgreSQL has no statement journal
// for them to cost (store.Insert), so the projection upserts there too.
func (w *rawBatch) writePG(ctx context.Context, tx bun.Tx) error {
	for _, t := range w.order {
		conflict := " ON CONFLICT DO NOTHING"
		if t.key > 0 {
			sets := make([]string, 0, len(t.cols)-t.key)
			for _, col := range t.cols[t.key:] {
				sets = append(sets, col+" = EXCLUDED."+col)
			}
			conflict = " ON CONFLICT (" + strings.Join(t.cols[:t.key], ", ") + ") DO UPDATE SET " + strings.Join(sets, ", ")
		}
		one := store.Placeholders(len(t.cols))
		for chunk := range slices.Chunk(slices.Concat(w.update[t.table], w.insert[t.table]), 500) {
			args := make([]any, 0, len(chunk)*len(t.cols))
			for _, r := range chunk {
				args = append(args, r...)
			}
			q := "INSERT INTO " + t.table + " (" + strings.Join(t.cols, ", ") + ") VALUES " +
				strings.TrimSuffix(strings.Repeat(one+", ", len(chunk)), ", ") + conflict
			if _, err := tx.NewRaw(q, args...).Exec(ctx); err != nil {
				return fmt.Errorf("writing %s: %w", t.table, err)
			}
		}
	}
	return nil
}
