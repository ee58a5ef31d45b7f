package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/gamify/boost/store"
)

type counted struct {
	bun.BaseModel `bun:"table:write_test_counts"`

	Project string    `bun:"project,pk"`
	Name    string    `bun:"name,pk"`
	At      time.Time `bun:"at,notnull"`
	Count   int64     `bun:"count,notnull"`
	Note    *string   `bun:"note"`
}

// databases are the engines the test runs on: SQLite always, PostgreSQL
// when BOOST_TEST_DATABASE_URL names one.
func databases(t *testing.T) map[string]*store.DB {
	t.Helper()
	dbs := map[string]*store.DB{}
	lite, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "write.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	dbs["sqlite"] = lite
	if url := os.Getenv("BOOST_TEST_DATABASE_URL"); url != "" {
		pg, err := store.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pg.Close() })
		dbs["postgres"] = pg
	}
	return dbs
}

// inTx runs f in a transaction on a fresh write_test_counts table, which
// is rolled back (with the table, on PostgreSQL) at the end.
func inTx(t *testing.T, db *store.DB, f func(ctx context.Context, tx bun.Tx) error) error {
	t.Helper()
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS write_test_counts"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NewCreateTable().Model((*counted)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.ExecContext(context.Background(), "DROP TABLE IF EXISTS write_test_counts") })
	return db.RunInTx(ctx, nil, f)
}

func TestInsertReturnsWhatItInserted(t *testing.T) {
	at := time.Date(2026, 12, 7, 5, 0, 0, 123456000, time.UTC)
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			err := inTx(t, db, func(ctx context.Context, tx bun.Tx) error {
				first := []counted{{Project: "p", Name: "a", At: at, Count: 1}, {Project: "p", Name: "it's", At: at, Count: 2}}
				if err := store.Insert(ctx, tx.NewInsert().Model(&first)); err != nil {
					t.Fatal(err)
				}
				again := []counted{{Project: "p", Name: "a", At: at, Count: 9}, {Project: "p", Name: "c?", At: at, Count: 3}}
				var names []string
				if err := store.Insert(ctx, tx.NewInsert().Model(&again).On("CONFLICT (project, name) DO NOTHING").
					Returning("name"), &names); err != nil {
					t.Fatal(err)
				}
				if strings.Join(names, ",") != "c?" {
					t.Errorf("inserted %q, want only c?", names)
				}
				var got []counted
				if err := tx.NewSelect().Model(&got).Order("name").Scan(ctx); err != nil {
					t.Fatal(err)
				}
				if len(got) != 3 || got[0].Count != 1 || got[1].Name != "c?" || got[2].Name != "it's" || !got[0].At.Equal(at) {
					t.Errorf("stored %+v", got)
				}
				// A constraint still fails the statement (the caller's
				// transaction then rolls back).
				bad := []counted{{Project: "p", Name: "d", At: at}, {Project: "p", Name: "a", At: at}}
				return store.Insert(ctx, tx.NewInsert().Model(&bad))
			})
			if err == nil {
				t.Error("a duplicate key was inserted without an error")
			}
		})
	}
}

func TestUpdateRowsOverwritesEveryRowItNames(t *testing.T) {
	db := databases(t)["sqlite"]
	at := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	later := at.Add(90 * time.Minute)
	note := "kept's"
	err := inTx(t, db, func(ctx context.Context, tx bun.Tx) error {
		rows := []counted{{Project: "p", Name: "a", At: at, Count: 1}, {Project: "p", Name: "b", At: at, Count: 2},
			{Project: "q", Name: "a", At: at, Count: 3}}
		if err := store.Insert(ctx, tx.NewInsert().Model(&rows)); err != nil {
			t.Fatal(err)
		}
		set := []string{"at", "count", "note"}
		if err := store.UpdateRows(ctx, tx, "write_test_counts", []string{"project", "name"}, set,
			[][]any{{"p", "a", later, 10, note}, {"q", "a", later, 30, nil}}); err != nil {
			t.Fatal(err)
		}
		var got []counted
		if err := tx.NewSelect().Model(&got).Order("project", "name").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if got[0].Count != 10 || !got[0].At.Equal(later) || got[0].Note == nil || *got[0].Note != note ||
			got[1].Count != 2 || !got[1].At.Equal(at) || got[2].Count != 30 || got[2].Note != nil {
			t.Errorf("after the update: %+v", got)
		}
		// Text times must be stored as an insert stores them, or ordering
		// and equality by time break.
		n, err := tx.NewSelect().Model((*counted)(nil)).Where("at = ?", later).Count(ctx)
		if err != nil || n != 2 {
			t.Errorf("%d rows at the updated time, want 2 (%v)", n, err)
		}
		if err := store.UpdateRows(ctx, tx, "write_test_counts", []string{"project", "name"}, set,
			[][]any{{"p", "missing", later, 1, nil}}); err == nil {
			t.Error("a row that matched nothing was skipped without an error")
		}
		if err := store.UpdateRows(ctx, tx, "write_test_counts", []string{"project", "name"}, set,
			[][]any{{"p", "a", later, 1, nil}}); err != nil {
			t.Fatal(err)
		}
		var wrong []counted
		if err := tx.NewSelect().Model(&wrong).Where("count IS NULL").Scan(ctx); err != nil || len(wrong) != 0 {
			t.Errorf("NOT NULL broken: %v %v", wrong, err)
		}
		return store.UpdateRows(ctx, tx, "write_test_counts", []string{"project", "name"}, set,
			[][]any{{"p", "a", later, nil, nil}})
	})
	if err == nil {
		t.Error("a NULL was written to a NOT NULL column without an error")
	}
}

func TestInsertRowsSkipsStoredKeys(t *testing.T) {
	db := databases(t)["sqlite"]
	at := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	err := inTx(t, db, func(ctx context.Context, tx bun.Tx) error {
		cols := []string{"project", "name", "at", "count"}
		if err := store.InsertRows(ctx, tx, "write_test_counts", cols, [][]any{{"p", "a", at, 1}, {"p", "it's", at, 2}}); err != nil {
			t.Fatal(err)
		}
		if err := store.InsertRows(ctx, tx, "write_test_counts", cols, [][]any{{"p", "a", at, 9}, {"q", "a", at, 3}}); err != nil {
			t.Fatal(err)
		}
		var got []counted
		if err := tx.NewSelect().Model(&got).Order("project", "name").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Count != 1 || got[1].Name != "it's" || got[2].Project != "q" || !got[0].At.Equal(at) {
			t.Errorf("stored %+v", got)
		}
		if err := store.InsertRows(ctx, tx, "write_test_counts", cols, [][]any{{"p", "b", at}}); err == nil {
			t.Error("a short row was inserted without an error")
		}
		return store.InsertRows(ctx, tx, "write_test_counts", cols, [][]any{{"p", "c", at, nil}})
	})
	if err == nil {
		t.Error("a NULL was written to a NOT NULL column without an error")
	}
}
