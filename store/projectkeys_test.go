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
