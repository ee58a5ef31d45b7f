package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"regexp"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

var dbNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// createDatabase creates a fresh database name on the server adminURL
// points at and returns the URL of the new database.
func createDatabase(ctx context.Context, adminURL, name string) (string, error) {
	if !dbNameRE.MatchString(name) {
		return "", fmt.Errorf("database name %q is not a plain identifier", name)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("parsing the PostgreSQL URL: %w", err)
	}
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return "", fmt.Errorf("opening PostgreSQL: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("creating database %s on %s: %w", name, u.Redacted(), err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// dropDatabase drops name, disconnecting whoever still uses it.
func dropDatabase(ctx context.Context, adminURL, name string) error {
	if !dbNameRE.MatchString(name) {
		return fmt.Errorf("database name %q is not a plain identifier", name)
	}
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return fmt.Errorf("opening PostgreSQL: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}
