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
)

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
			// byte collation, as on a database migrated in order.
			var stmts []string
			for _, name := range []string{"20261128000700_daily_event_users_spans", "20261128000800_text_keys_byte_order"} {
				up, err := os.ReadFile(filepath.Join("..", "store", "migrations", string(db.Dialect), name+".tx.up.sql"))
				if err != nil {
					t.Fatal(err)
				}
				stmts = append(stmts, strings.Split(string(up), "--bun:split")...)
			}
			if err := db.RunInTx(t.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
				for _, stmt := range stmts {
					if _, err := tx.ExecContext(ctx, stmt); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// 000700 made project_id text; 20261207000100 keys SQLite's by
			// an integer (the same digits): compare the values alone.
			got := dump(t, db)["daily_event_users"]
			for _, rows := range [][]map[string]any{want, got} {
				for _, r := range rows {
					r["project_id"] = fmt.Sprint(r["project_id"])
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("backfill differs:\napply:    %v\nbackfill: %v", want, got)
			}
		})
	}
}
