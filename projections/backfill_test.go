package projections_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/domain"
	"github.com/gamify/boost/internal/testenv"
	"github.com/gamify/boost/projections"
	"github.com/gamify/boost/readmodel"
	"github.com/gamify/boost/store"
)

// schema is the PostgreSQL schema db's unqualified tables are in.
func schema(t *testing.T, db *store.DB) string {
	t.Helper()
	if db.Dialect != store.Postgres {
		return "main"
	}
	var s string
	if err := db.NewRaw("SELECT current_schema()").Scan(t.Context(), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDailyEventUsersBackfillMatchesApply runs migration 000700's
// statements (and 000800's after them) again over events Apply stored
// (times with fractions of a second, which SQLite keeps as text) and
// checks the table it rebuilds from them is the one Apply built.
func TestDailyEventUsersBackfillMatchesApply(t *testing.T) {
	for _, mode := range testenv.Modes() {
		t.Run(string(mode), func(t *testing.T) {
			env := testenv.Start(t, mode)
			env.Migrate(t.Context())
			db := env.OpenDB(t.Context())
			apply(t, db, projections.NewEvents("events"), [][]domain.Event{history(t, domain.NewID())})
			want := dump(t, db)["daily_event_users"]
			if len(want) == 0 {
				t.Fatal("no daily event users: the comparison proves nothing")
			}

			// 000700 rebuilds the table; 000800 then gives its text keys the
			// byte collation, as on a database migrated in order. 000700
			// read events as they were then, which a temporary view, found
			// before the table, gives it back: the project's UUID on
			// PostgreSQL (keyed since 20261207000200), the time as text on
			// SQLite (int64 µs since 20261207000300, which then converts
			// the days 000700 wrote; it leaves integers as they are).
			names := []string{"20261128000700_daily_event_users_spans", "20261128000800_text_keys_byte_order"}
			oldEvents := "CREATE TEMP VIEW events AS SELECT k.project_id, e.type, e.user_id, e.anonymous_id, e.occurred_at, " +
				"e.rejected FROM " + schema(t, db) + ".events AS e JOIN project_keys AS k ON k.key = e.project_id"
			if db.Dialect == store.SQLite {
				names = append(names, "20261207000300_sqlite_int_times")
				oldEvents = "CREATE TEMP VIEW events AS SELECT project_id, type, user_id, anonymous_id, rejected, " +
					"strftime('%Y-%m-%d %H:%M:%S', occurred_at / 1000000, 'unixepoch') || CASE WHEN occurred_at % 1000000 <> 0 " +
					"THEN '.' || rtrim(printf('%06d', occurred_at % 1000000), '0') ELSE '' END || '+00:00' AS occurred_at FROM main.events"
			}
			stmts, dropOld := []string{oldEvents}, "DROP VIEW pg_temp.events"
			if db.Dialect == store.SQLite {
				dropOld = "DROP VIEW temp.events"
			}
			for _, name := range names {
				up, err := os.ReadFile(filepath.Join("..", "store", "migrations", string(db.Dialect), name+".tx.up.sql"))
				if err != nil {
					t.Fatal(err)
				}
				stmts = append(stmts, strings.Split(string(up), "--bun:split")...)
				if strings.Contains(name, "000700") {
					stmts = append(stmts, dropOld)
				}
			}
			if err := db.RunInTx(t.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
				for _, stmt := range stmts {
					if _, err := tx.ExecContext(ctx, stmt); err != nil {
						return fmt.Errorf("%.60s: %w", strings.TrimSpace(stmt), err)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// 000700 made project_id text on SQLite, which 20261207000100
			// keys by an integer (the same digits): compare the values
			// alone. On PostgreSQL it made it the UUID, which
			// 20261207000200 keys: compare the UUIDs.
			// A connection of its own: the pool's cached the table's plan
			// before the rebuild changed its column's type.
			got := dump(t, env.OpenDB(t.Context()))["daily_event_users"]
			uuids := map[string]string{}
			if db.Dialect == store.Postgres {
				var keys []readmodel.ProjectKey
				if err := db.NewSelect().Model(&keys).Scan(t.Context()); err != nil {
					t.Fatal(err)
				}
				for _, k := range keys {
					uuids[fmt.Sprint(k.Key)] = k.ProjectID
				}
			}
			for _, rows := range [][]map[string]any{want, got} {
				for _, r := range rows {
					r["project_id"] = fmt.Sprint(r["project_id"])
				}
			}
			for _, r := range want {
				if id, ok := uuids[r["project_id"].(string)]; ok {
					r["project_id"] = id
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("backfill differs:\napply:    %v\nbackfill: %v", want, got)
			}
		})
	}
}
