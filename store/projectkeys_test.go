package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/gamify/boost/store"
)

// SQLite's hot tables key a project by an integer from project_keys; the
// decimal string ProjectKeys hands out is stored as that integer and
// reads back as the same string.
func TestProjectKeys(t *testing.T) {
	ctx := t.Context()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	a, b := uuid.NewString(), uuid.NewString()

	// A key handed out in a transaction that rolls back is gone with it.
	rollback := errors.New("rollback")
	if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := store.ProjectKeys(ctx, tx, []string{b}); err != nil {
			return err
		}
		return rollback
	}); !errors.Is(err, rollback) {
		t.Fatal(err)
	}
	var keys map[string]string
	if err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		keys, err = store.ProjectKeys(ctx, tx, []string{a, a})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[a] != "1" {
		t.Fatalf("keys = %v, want %s: 1", keys, a)
	}
	again, err := store.ProjectKeys(ctx, db.DB, []string{b, a})
	if err != nil {
		t.Fatal(err)
	}
	if again[a] != "1" || again[b] != "2" {
		t.Fatalf("keys = %v, want %s kept at 1 and %s given 2", again, a, b)
	}

	if _, err := db.ExecContext(ctx, "INSERT INTO daily_users (project_id, day, distinct_id) VALUES (?, 'd', 'u')", keys[a]); err != nil {
		t.Fatal(err)
	}
	var stored struct {
		Type string `bun:"type"`
		Key  string `bun:"project_id"`
	}
	if err := db.NewRaw("SELECT typeof(project_id) AS type, project_id FROM daily_users WHERE project_id = "+
		store.ProjectKeySQL(db.DB, "?"), a).Scan(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Type != "integer" || stored.Key != keys[a] {
		t.Fatalf("stored %s %q, want integer %q", stored.Type, stored.Key, keys[a])
	}
	var n int
	if err := db.NewRaw("SELECT count(*) FROM daily_users WHERE project_id IN "+store.ProjectKeysSQL(db.DB, "(?)"),
		bun.In([]string{b, uuid.NewString()})).Scan(ctx, &n); err != nil || n != 0 {
		t.Fatalf("other projects matched %d rows (%v)", n, err)
	}
}
