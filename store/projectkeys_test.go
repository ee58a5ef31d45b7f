package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// The hot tables key a project by an integer from project_keys, on both
// databases; the decimal string ProjectKeys hands out is stored as that
// integer and reads back as the same string.
func TestProjectKeys(t *testing.T) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			ctx := t.Context()
			env := testenv.Start(t, mode)
			env.Migrate(ctx)
			db := env.OpenDB(ctx)
			a, b := uuid.NewString(), uuid.NewString()

			// A key handed out in a transaction that rolls back is gone
			// with it.
			rollback := errors.New("rollback")
			if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				if _, err := store.ProjectKeys(ctx, tx, []string{b}); err != nil {
					return err
				}
				return rollback
			}); !errors.Is(err, rollback) {
				t.Fatal(err)
			}
			if n, err := db.NewSelect().Model((*readmodel.ProjectKey)(nil)).Where("project_id = ?", b).Count(ctx); err != nil || n != 0 {
				t.Fatalf("a rolled back key was kept: %d rows (%v)", n, err)
			}
			var keys map[string]string
			if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				var err error
				keys, err = store.ProjectKeys(ctx, tx, []string{a, a})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 || keys[a] == "" {
				t.Fatalf("keys = %v, want one for %s", keys, a)
			}
			again, err := store.ProjectKeys(ctx, db.DB, []string{b, a})
			if err != nil {
				t.Fatal(err)
			}
			if again[a] != keys[a] || again[b] == "" || again[b] == keys[a] {
				t.Fatalf("keys = %v, want %s kept at %s and %s given another", again, a, keys[a], b)
			}

			if _, err := db.ExecContext(ctx, "INSERT INTO daily_users (project_id, day, distinct_id) VALUES (?, '2026-12-07', 'u')",
				keys[a]); err != nil {
				t.Fatal(err)
			}
			typeOf := "typeof(project_id)"
			if db.Dialect == store.Postgres {
				typeOf = "pg_typeof(project_id)::text"
			}
			var stored struct {
				Type string `bun:"type"`
				Key  string `bun:"project_id"`
			}
			if err := db.NewRaw("SELECT "+typeOf+" AS type, project_id FROM daily_users WHERE project_id = "+
				store.ProjectKeySQL("?"), a).Scan(ctx, &stored); err != nil {
				t.Fatal(err)
			}
			if stored.Type != "integer" || stored.Key != keys[a] {
				t.Fatalf("stored %s %q, want integer %q", stored.Type, stored.Key, keys[a])
			}
			var n int
			if err := db.NewRaw("SELECT count(*) FROM daily_users WHERE project_id IN "+store.ProjectKeysSQL("(?)"),
				bun.In([]string{b, uuid.NewString()})).Scan(ctx, &n); err != nil || n != 0 {
				t.Fatalf("other projects matched %d rows (%v)", n, err)
			}
		})
	}
}

// TestProjectKeysMigrationCarriesRows writes rows into every hot table as
// they were before the project was keyed (its UUID in project_id), then
// migrates: each row must keep its values, its project now its key.
func TestProjectKeysMigrationCarriesRows(t *testing.T) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			ctx := t.Context()
			env := testenv.Start(t, mode)
			db := env.OpenDB(ctx)
			if err := db.MigrateBefore(ctx, "20261207000100"); err != nil {
				t.Fatal(err)
			}
			a, b := uuid.NewString(), uuid.NewString()
			const day, at = "2026-12-07", "2026-12-07 10:00:00+00:00"
			rows := map[string]string{
				"events": "(id, project_id, type, user_id, properties, key_id, status, received_at, occurred_at) " +
					"VALUES (?, ?, 'page_view', 'u1', '{}', '" + uuid.NewString() + "', 'processed', '" + at + "', '" + at + "')",
				"end_users":           "(project_id, external_id, first_seen_at, last_seen_at, event_count) VALUES (?, 'u1', '" + at + "', '" + at + "', 1)",
				"end_user_aliases":    "(project_id, anonymous_id, external_id, linked_at) VALUES (?, 'a1', 'u1', '" + at + "')",
				"event_counts_hourly": "(project_id, event_type, bucket_start, count) VALUES (?, 'page_view', '" + at + "', 1)",
				"daily_users":         "(project_id, day, distinct_id) VALUES (?, '" + day + "', 'u1')",
				"revenue_hourly":      "(project_id, currency, bucket_start, amount, count) VALUES (?, 'EUR', '" + at + "', 100, 1)",
				"event_counts_daily":  "(project_id, event_type, day, count) VALUES (?, 'page_view', '" + day + "', 1)",
				"daily_event_users":   "(project_id, event_type, distinct_id, day, first_at, last_at) VALUES (?, 'page_view', 'u1', '" + day + "', 1, 2)",
				"weekly_users":        "(project_id, distinct_id, week) VALUES (?, 'u1', '" + day + "')",
				"monthly_users":       "(project_id, distinct_id, month) VALUES (?, 'u1', '" + day + "')",
				"active_user_counts":  "(project_id, period, period_start, users) VALUES (?, 'day', '" + day + "', 1)",
			}
			for table, insert := range rows {
				for _, p := range []string{a, b} {
					args := []any{p}
					if table == "events" {
						args = []any{uuid.NewString(), p}
					}
					if _, err := db.ExecContext(ctx, "INSERT INTO "+table+" "+insert, args...); err != nil {
						t.Fatalf("%s: %v", table, err)
					}
				}
			}
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			keys, err := store.ProjectKeys(ctx, db.DB, []string{a, b})
			if err != nil {
				t.Fatal(err)
			}
			if keys[a] == keys[b] {
				t.Fatalf("keys = %v", keys)
			}
			for table := range rows {
				for _, p := range []string{a, b} {
					var n int
					if err := db.NewRaw("SELECT count(*) FROM "+table+" WHERE project_id = ?", keys[p]).Scan(ctx, &n); err != nil || n != 1 {
						t.Errorf("%s: %d rows keyed %s for %s, want 1 (%v)", table, n, keys[p], p, err)
					}
				}
			}
		})
	}
}
