package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/uptrace/bun/migrate"
)

//go:embed migrations
var migrationFiles embed.FS

// ErrNotMigrated tells a role to refuse to start: it would otherwise fail
// later on a missing table with a far less helpful message.
var ErrNotMigrated = errors.New("database is not migrated")

func (db *DB) migrator() (*migrate.Migrator, error) {
	sub, err := fs.Sub(migrationFiles, "migrations/"+string(db.Dialect))
	if err != nil {
		return nil, fmt.Errorf("loading %s migrations: %w", db.Dialect, err)
	}
	ms := migrate.NewMigrations()
	if err := ms.Discover(sub); err != nil {
		return nil, fmt.Errorf("discovering %s migrations: %w", db.Dialect, err)
	}
	return migrate.NewMigrator(db.DB, ms, migrate.WithMarkAppliedOnSuccess(true)), nil
}

// Migrate applies every pending migration and returns the names applied.
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	m, err := db.migrator()
	if err != nil {
		return nil, err
	}
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("creating migration tables: %w", err)
	}
	if err := m.Lock(ctx); err != nil {
		return nil, fmt.Errorf("locking migrations: %w", err)
	}
	defer m.Unlock(ctx) //nolint:errcheck // best effort; the lock row is advisory
	group, err := m.Migrate(ctx)
	if err != nil {
		return nil, fmt.Errorf("applying migrations: %w", err)
	}
	var names []string
	for _, mig := range group.Migrations {
		names = append(names, mig.Name+"_"+mig.Comment)
	}
	return names, nil
}

// CheckMigrated returns ErrNotMigrated (wrapped with what is missing) unless
// every migration this build knows has been applied.
func (db *DB) CheckMigrated(ctx context.Context) error {
	m, err := db.migrator()
	if err != nil {
		return err
	}
	status, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		// No bun_migrations table yet: nothing was ever applied.
		return fmt.Errorf("%w: run `boost migrate` first (%v)", ErrNotMigrated, err)
	}
	if pending := status.Unapplied(); len(pending) > 0 {
		names := make([]string, len(pending))
		for i, p := range pending {
			names[i] = p.Name + "_" + p.Comment
		}
		return fmt.Errorf("%w: %d pending (%s); run `boost migrate` first",
			ErrNotMigrated, len(pending), strings.Join(names, ", "))
	}
	return nil
}
