package store

import (
	"context"
	"fmt"
	"io/fs"
	"testing/fstest"

	"github.com/uptrace/bun/migrate"
)

// MigrateBefore applies the migrations older than version only: a test
// can then write rows as that schema had them and let Migrate carry them.
func (db *DB) MigrateBefore(ctx context.Context, version string) error {
	sub, err := fs.Sub(migrationFiles, "migrations/"+string(db.Dialect))
	if err != nil {
		return err
	}
	older := fstest.MapFS{}
	if err := fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path >= version {
			return err
		}
		b, err := fs.ReadFile(sub, path)
		older[path] = &fstest.MapFile{Data: b}
		return err
	}); err != nil {
		return err
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(older); err != nil {
		return err
	}
	m := migrate.NewMigrator(db.DB, ms, migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return err
	}
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating before %s: %w", version, err)
	}
	return nil
}
